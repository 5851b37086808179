import { oneShard, type ShardKeys } from '../../shared/core/shards';
import {
  APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  GetUsagePlanCommand,
} from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SendEmailCommand, SESClient } from '@aws-sdk/client-ses';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { ApiKeyGateway, KeyUsageGateway } from '../../shared/aws/api-key-gateway';
import { CustomerLedgerTable } from '../../shared/aws/customer-ledger';
import { RegistrationTable } from '../../shared/aws/registration-table';
import { SesMailer } from '../../shared/aws/ses-mailer';
import type { ProvisioningDeps } from '../../shared/provisioning/provision-key';
import { hashRegistrationRequest, type Registration, type RegistrationRequest } from '../../shared/core/registration';

export const KEY_ID = 'key-id-1';
export const KEY_VALUE = 'Zq3vR8sT1uW4xY7zA0bC2dE5fG9hJ6kL';
export const PLAN_FREE = 'plan-free';
export const PLAN_PRO = 'plan-pro';

export const aRequest = (overrides: Partial<RegistrationRequest> = {}): RegistrationRequest => ({
  customerId: 'cust-1',
  email: 'ada@example.com',
  tier: 'free',
  ...overrides,
});

/** AWS SDK error as the SDK builds it: a name and response metadata. */
export function awsError(name: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(`${name} (simulated)`), { name, $metadata: { httpStatusCode } });
}

/**
 * The saga's real adapters over aws-sdk-client-mock'd clients, answering the happy path by
 * default; a test overrides the one answer it is about.
 */
export function mockedProvisioning() {
  const apiGateway = new APIGatewayClient({ region: 'us-east-1' });
  const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  const ses = new SESClient({ region: 'us-east-1' });
  const apiGatewayMock = mockClient(apiGateway);
  const dynamoMock = mockClient(dynamo);
  const sesMock = mockClient(ses);

  apiGatewayMock.on(CreateApiKeyCommand).resolves({ id: KEY_ID, value: KEY_VALUE });
  apiGatewayMock.on(CreateUsagePlanKeyCommand).resolves({ id: KEY_ID });
  apiGatewayMock.on(DeleteApiKeyCommand).resolves({});
  apiGatewayMock
    .on(GetUsagePlanCommand)
    .resolves({ throttle: { rateLimit: 2, burstLimit: 5 }, quota: { limit: 1000, period: 'DAY' } });
  dynamoMock.on(TransactWriteCommand).resolves({});
  dynamoMock.on(UpdateCommand).resolves({});
  // The customer's partition, and any registration read by id: empty unless a test says otherwise.
  dynamoMock.on(QueryCommand).resolves({ Items: [] });
  dynamoMock.on(GetCommand).resolves({});
  sesMock.on(SendEmailCommand).resolves({ MessageId: 'message-1' });

  // The whole ledger and key gateway, not the commit and the saga's calls ProvisioningDeps asks
  // for: tests reuse them (rotation, tier changes).
  const deps: ProvisioningDeps & { store: RegistrationTable; ledger: CustomerLedgerTable; keys: ShardKeys<ApiKeyGateway> } = {
    store: new RegistrationTable({ client: dynamo, tableName: 'keyplan-test', retentionDays: 30 }),
    keys: oneShard(new ApiKeyGateway({ client: apiGateway, singleAttemptClient: apiGateway, backoffBaseMs: 0 })),
    mailer: new SesMailer({ client: ses, sender: 'keys@example.com' }),
    ledger: new CustomerLedgerTable({ client: dynamo, tableName: 'keyplan-test' }),
    // Tests that care about lease times set their own clock.
    clock: () => new Date(),
    settings: {
      shards: [{ id: 'home', plans: { free: PLAN_FREE, pro: PLAN_PRO }, keyCeiling: 10_000, state: 'accepting' }],
      keyNamePrefix: 'keyplan-test',
      stage: 'test',
      rotationDays: 90,
      leaseSeconds: 60,
      sweepSeconds: 300,
    },
  };
  // GetUsage, over the same mocked client, for the usage route's tests.
  const usageKeys = oneShard(new KeyUsageGateway({ client: apiGateway }));
  return { deps, usageKeys, dynamo, apiGatewayMock, dynamoMock, sesMock };
}

export type MockedProvisioning = ReturnType<typeof mockedProvisioning>;

/** A registration as an earlier attempt left it in the table (cust-1, reg-1, free). */
export function existingRegistration(overrides: Partial<Registration> = {}): Registration {
  const request = aRequest();
  return {
    ...request,
    registrationId: 'reg-1',
    payloadHash: hashRegistrationRequest(request),
    usagePlanId: PLAN_FREE,
    state: 'PENDING',
    leaseExpiresAt: 0,
    attemptId: 'earlier-attempt',
    createdAt: '2026-03-01T11:00:00.000Z',
    updatedAt: '2026-03-01T11:00:00.000Z',
    ...overrides,
  };
}

/** The claim transaction fails because the registration exists; DynamoDB hands back the item. */
export function claimFindsExisting(m: MockedProvisioning, registration: Registration): void {
  m.dynamoMock
    .on(TransactWriteCommand)
    .rejectsOnce(
      new TransactionCanceledException({
        message: 'Transaction cancelled',
        $metadata: {},
        CancellationReasons: [
          { Code: 'ConditionalCheckFailed', Item: marshall(registration, { removeUndefinedValues: true }) },
          { Code: 'None' },
        ],
      }),
    )
    .resolves({});
}
