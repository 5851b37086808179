import { createHash, randomUUID } from 'node:crypto';
import { APIGatewayClient, CreateApiKeyCommand, CreateUsagePlanKeyCommand } from '@aws-sdk/client-api-gateway';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SendEmailCommand, SESClient } from '@aws-sdk/client-ses';

interface BareSettings {
  tableName: string;
  usagePlanId: string;
  sender: string;
  keyNamePrefix: string;
}

/**
 * Plain SDK clients with the SDK's defaults, as a baseline of figure 2 would build them: endpoint,
 * region and credentials come from the environment as for keyplan's clients.
 */
class BareClients {
  readonly dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  readonly apiGateway = new APIGatewayClient({});
  readonly ses = new SESClient({});

  /** All three, e.g. for a counter or a timer in their middleware. */
  get all() {
    return [this.dynamo, this.apiGateway, this.ses] as const;
  }

  /** CreateApiKey and CreateUsagePlanKey, with the name, tags and description keyplan gives a key. */
  async createKeyInPlan(settings: BareSettings, customerId: string): Promise<{ keyId: string; value: string }> {
    const key = await this.apiGateway.send(
      new CreateApiKeyCommand({
        name: `${settings.keyNamePrefix}-${createHash('sha256').update(customerId).digest('hex').slice(0, 32)}`,
        description: `keyplan key of customer ${customerId}`,
        enabled: true,
        customerId,
        tags: { 'keyplan:managed': 'true', 'keyplan:customer': customerId, 'keyplan:registration': customerId },
      }),
    );
    const keyId = String(key.id);
    await this.apiGateway.send(new CreateUsagePlanKeyCommand({ usagePlanId: settings.usagePlanId, keyId, keyType: 'API_KEY' }));
    return { keyId, value: String(key.value) };
  }

  /** SendEmail with a message of the size and shape of keyplan's key email. */
  async emailKey(settings: BareSettings, email: string, value: string, tier: string): Promise<void> {
    await this.ses.send(
      new SendEmailCommand({
        Source: settings.sender,
        Destination: { ToAddresses: [email] },
        Message: {
          Subject: { Data: 'Your API key', Charset: 'UTF-8' },
          Body: {
            Text: { Data: emailText(value, tier), Charset: 'UTF-8' },
            Html: { Data: emailHtml(value, tier), Charset: 'UTF-8' },
          },
        },
      }),
    );
  }
}

/**
 * The first baseline of figure 2: the five AWS calls of a fresh registration as keyplan makes them
 * (claim transaction, CreateApiKey, CreateUsagePlanKey, SendEmail, record transaction) made
 * straight with the SDK, with items, expressions, tags and an email of the same shape and size as
 * keyplan's (shared/aws/registration-table.ts: the claim reserves and leases the customer profile,
 * the record writes the registration, the key item and the profile), on keyplan's table, and none
 * of keyplan's code: no HTTP, no validation, no middleware, no saga. It isolates keyplan's code;
 * it keeps keyplan's choice of DynamoDB calls. Keep it in step with the registration table.
 */
export class BareRegistration {
  readonly #aws = new BareClients();

  constructor(private readonly settings: BareSettings) {}

  get clients() {
    return this.#aws.all;
  }

  async register(customerId: string, tier: string): Promise<void> {
    const { tableName, usagePlanId } = this.settings;
    const now = new Date();
    const at = now.toISOString();
    const email = `${customerId}@example.com`;
    const attemptId = randomUUID();
    const leaseExpiresAt = now.getTime() + 60_000;
    const profile = { pk: `CUSTOMER#${customerId}`, sk: 'PROFILE' };

    await this.#aws.dynamo.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: tableName,
              Item: {
                pk: `REG#${customerId}`,
                sk: 'REG',
                ...registrationItem(customerId, tier, usagePlanId, attemptId, now),
                expiresAt: Math.floor(now.getTime() / 1000) + 30 * 86_400,
                dueType: 'RESUME',
                dueAt: new Date(now.getTime() + 900_000).toISOString(),
              },
              ConditionExpression: 'attribute_not_exists(pk)',
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
          {
            // A new customer's profile, whole (RegistrationTable#putNewCustomer).
            Put: {
              TableName: tableName,
              Item: {
                ...profile,
                customerId,
                registrationId: customerId,
                status: 'PENDING',
                priorStatus: 'UNREGISTERED',
                createdAt: at,
                updatedAt: at,
                keys: {},
                version: 1,
                lease: { owner: attemptId, operation: 'register', until: leaseExpiresAt, mustFinish: true },
              },
              ConditionExpression: 'attribute_not_exists(pk)',
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
        ],
      }),
    );

    const key = await this.#aws.createKeyInPlan(this.settings, customerId);
    await this.#aws.emailKey(this.settings, email, key.value, tier);

    const fingerprint = createHash('sha256').update(key.value).digest('hex').slice(0, 8);
    const rotateAt = new Date(now.getTime() + 90 * 86_400_000).toISOString();
    await this.#aws.dynamo.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: tableName,
              Key: { pk: `REG#${customerId}`, sk: 'REG' },
              UpdateExpression:
                'SET #state = :state, keyId = :keyId, keyFingerprint = :fp, leaseExpiresAt = :zero, updatedAt = :at REMOVE expiresAt, dueType, dueAt',
              ConditionExpression: 'attemptId = :attemptId',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: { ':state': 'ACTIVE', ':keyId': key.keyId, ':fp': fingerprint, ':zero': 0, ':at': at, ':attemptId': attemptId },
            },
          },
          {
            Put: {
              TableName: tableName,
              Item: {
                pk: `CUSTOMER#${customerId}`,
                sk: `KEY#${key.keyId}`,
                customerId,
                keyId: key.keyId,
                state: 'ACTIVE',
                usagePlanId,
                tier,
                fingerprint,
                registrationId: customerId,
                createdAt: at,
                rotateAt,
                dueType: 'ROTATE',
                dueAt: rotateAt,
                generation: 1,
              },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Update: {
              TableName: tableName,
              Key: profile,
              UpdateExpression:
                'SET email = :email, tier = :tier, #status = :active, #keys.#k = :active, updatedAt = :at, #version = #version + :one, emailedKeyId = :keyId REMOVE #lease, priorStatus',
              ConditionExpression: '#lease.#owner = :attemptId',
              ExpressionAttributeNames: {
                '#status': 'status',
                '#keys': 'keys',
                '#k': key.keyId,
                '#version': 'version',
                '#lease': 'lease',
                '#owner': 'owner',
              },
              ExpressionAttributeValues: {
                ':email': email,
                ':tier': tier,
                ':active': 'ACTIVE',
                ':at': at,
                ':one': 1,
                ':attemptId': attemptId,
                ':keyId': key.keyId,
              },
            },
          },
        ],
      }),
    );
  }
}

/**
 * The second baseline of figure 2 (issue #13): the minimal safe sequence. A conditional PutItem
 * claims the registration (a second claim of the same id fails), CreateApiKey, CreateUsagePlanKey,
 * SendEmail, and an UpdateItem conditioned on the claim's attempt records the key, all on a table
 * with a partition key only and no index. No transaction, no customer item, no due index: what
 * any registration must cost, against which keyplan's choices of calls are measured too.
 */
export class MinimalRegistration {
  readonly #aws = new BareClients();

  constructor(private readonly settings: BareSettings) {}

  get clients() {
    return this.#aws.all;
  }

  async register(customerId: string, tier: string): Promise<void> {
    const { tableName, usagePlanId } = this.settings;
    const now = new Date();
    const attemptId = randomUUID();
    await this.#aws.dynamo.send(
      new PutCommand({
        TableName: tableName,
        Item: { pk: `REG#${customerId}`, ...registrationItem(customerId, tier, usagePlanId, attemptId, now) },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    const key = await this.#aws.createKeyInPlan(this.settings, customerId);
    await this.#aws.emailKey(this.settings, `${customerId}@example.com`, key.value, tier);
    await this.#aws.dynamo.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { pk: `REG#${customerId}` },
        UpdateExpression: 'SET #state = :state, keyId = :keyId, keyFingerprint = :fp, leaseExpiresAt = :zero, updatedAt = :at',
        ConditionExpression: 'attemptId = :attemptId',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: {
          ':state': 'ACTIVE',
          ':keyId': key.keyId,
          ':fp': createHash('sha256').update(key.value).digest('hex').slice(0, 8),
          ':zero': 0,
          ':at': new Date().toISOString(),
          ':attemptId': attemptId,
        },
      }),
    );
  }
}

/** The minimal baseline's table: a partition key (`pk`) and nothing else. Idempotent. */
export async function ensureOneKeyTable(tableName: string): Promise<void> {
  const dynamo = new DynamoDBClient({});
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    await dynamo.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } finally {
    dynamo.destroy();
  }
}

/** The registration's attributes as keyplan's claim writes them. */
function registrationItem(customerId: string, tier: string, usagePlanId: string, attemptId: string, now: Date) {
  const at = now.toISOString();
  return {
    registrationId: customerId,
    customerId,
    email: `${customerId}@example.com`,
    tier,
    payloadHash: createHash('sha256').update(customerId).digest('hex'),
    usagePlanId,
    state: 'PENDING',
    attemptId,
    leaseExpiresAt: now.getTime() + 60_000,
    createdAt: at,
    updatedAt: at,
  };
}

const FACTS = (tier: string) =>
  [
    ['Tier', tier],
    ['Rate limit', '10 requests per second'],
    ['Burst limit', '20 requests'],
    ['Quota', '10000 requests per month'],
  ] as const;

function emailText(value: string, tier: string): string {
  return [
    'Hello,',
    '',
    'your API key is ready. Send it with every request in the x-api-key header:',
    '',
    `    x-api-key: ${value}`,
    '',
    ...FACTS(tier).map(([name, fact]) => `${name}: ${fact}`),
    '',
    'Keep it secret: anyone who has it can use your quota. If it leaks, ask us to rotate it.',
  ].join('\n');
}

function emailHtml(value: string, tier: string): string {
  const rows = FACTS(tier)
    .map(([name, fact]) => `<tr><th align="left">${name}</th><td>${fact}</td></tr>`)
    .join('');
  return (
    '<!doctype html><html><body><p>Hello,</p><p>your API key is ready. Send it with every request in the ' +
    `<code>x-api-key</code> header:</p><pre>x-api-key: ${value}</pre><table>${rows}</table>` +
    '<p>Keep it secret: anyone who has it can use your quota. If it leaks, ask us to rotate it.</p></body></html>'
  );
}
