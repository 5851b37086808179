import { createHash, randomUUID } from 'node:crypto';
import { APIGatewayClient, CreateApiKeyCommand, CreateUsagePlanKeyCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { SendEmailCommand, SESClient } from '@aws-sdk/client-ses';

/**
 * The baseline of figure 2: the five AWS calls of a fresh registration (claim, CreateApiKey,
 * CreateUsagePlanKey, SendEmail, record) made straight with the SDK, with items, tags and an
 * email of the same shape and size as keyplan's, and none of keyplan's code: no HTTP, no
 * validation, no middleware, no saga. Plain clients with the SDK's defaults; endpoint, region and
 * credentials come from the environment as for keyplan's clients.
 */
export class BareRegistration {
  readonly #dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  readonly #apiGateway = new APIGatewayClient({});
  readonly #ses = new SESClient({});

  constructor(
    private readonly settings: { tableName: string; usagePlanId: string; sender: string; keyNamePrefix: string },
  ) {}

  async register(customerId: string, tier: string): Promise<void> {
    const { tableName, usagePlanId, sender, keyNamePrefix } = this.settings;
    const now = new Date();
    const at = now.toISOString();
    const email = `${customerId}@example.com`;
    const attemptId = randomUUID();

    await this.#dynamo.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: tableName,
              Item: {
                pk: `REG#${customerId}`,
                sk: 'REG',
                registrationId: customerId,
                customerId,
                email,
                tier,
                payloadHash: createHash('sha256').update(customerId).digest('hex'),
                usagePlanId,
                state: 'PENDING',
                attemptId,
                leaseExpiresAt: now.getTime() + 60_000,
                createdAt: at,
                updatedAt: at,
                expiresAt: Math.floor(now.getTime() / 1000) + 30 * 86_400,
                dueType: 'RESUME',
                dueAt: new Date(now.getTime() + 900_000).toISOString(),
              },
              ConditionExpression: 'attribute_not_exists(pk)',
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
          {
            ConditionCheck: {
              TableName: tableName,
              Key: { pk: `CUSTOMER#${customerId}`, sk: 'PROFILE' },
              ConditionExpression: 'attribute_not_exists(pk) OR registrationId = :registrationId',
              ExpressionAttributeValues: { ':registrationId': customerId },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
        ],
      }),
    );

    const key = await this.#apiGateway.send(
      new CreateApiKeyCommand({
        name: `${keyNamePrefix}-${createHash('sha256').update(customerId).digest('hex').slice(0, 32)}`,
        description: `keyplan key of customer ${customerId}`,
        enabled: true,
        customerId,
        tags: { 'keyplan:managed': 'true', 'keyplan:customer': customerId, 'keyplan:registration': customerId },
      }),
    );
    const keyId = String(key.id);
    await this.#apiGateway.send(new CreateUsagePlanKeyCommand({ usagePlanId, keyId, keyType: 'API_KEY' }));

    await this.#ses.send(
      new SendEmailCommand({
        Source: sender,
        Destination: { ToAddresses: [email] },
        Message: {
          Subject: { Data: 'Your API key', Charset: 'UTF-8' },
          Body: {
            Text: { Data: emailText(String(key.value), tier), Charset: 'UTF-8' },
            Html: { Data: emailHtml(String(key.value), tier), Charset: 'UTF-8' },
          },
        },
      }),
    );

    const fingerprint = createHash('sha256').update(String(key.value)).digest('hex').slice(0, 8);
    const rotateAt = new Date(now.getTime() + 90 * 86_400_000).toISOString();
    await this.#dynamo.send(
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
              ExpressionAttributeValues: { ':state': 'ACTIVE', ':keyId': keyId, ':fp': fingerprint, ':zero': 0, ':at': at, ':attemptId': attemptId },
            },
          },
          {
            Update: {
              TableName: tableName,
              Key: { pk: `CUSTOMER#${customerId}`, sk: `KEY#${keyId}` },
              UpdateExpression:
                'SET customerId = :customerId, keyId = :keyId, #state = :active, usagePlanId = :plan, tier = :tier, fingerprint = :fp, registrationId = :registrationId, createdAt = :at, rotateAt = :rotateAt, dueType = :due, dueAt = :rotateAt, generation = :one',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: {
                ':customerId': customerId,
                ':keyId': keyId,
                ':active': 'ACTIVE',
                ':plan': usagePlanId,
                ':tier': tier,
                ':fp': fingerprint,
                ':registrationId': customerId,
                ':at': at,
                ':rotateAt': rotateAt,
                ':due': 'ROTATE',
                ':one': 1,
              },
            },
          },
          {
            Update: {
              TableName: tableName,
              Key: { pk: `CUSTOMER#${customerId}`, sk: 'PROFILE' },
              UpdateExpression:
                'SET customerId = :customerId, email = :email, tier = :tier, #status = :active, registrationId = :registrationId, createdAt = :at, updatedAt = :at',
              ConditionExpression: 'attribute_not_exists(pk) OR registrationId = :registrationId',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: {
                ':customerId': customerId,
                ':email': email,
                ':tier': tier,
                ':active': 'ACTIVE',
                ':registrationId': customerId,
                ':at': at,
              },
            },
          },
        ],
      }),
    );
  }
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
