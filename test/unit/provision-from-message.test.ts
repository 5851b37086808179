import { CreateApiKeyCommand, CreateUsagePlanKeyCommand } from '@aws-sdk/client-api-gateway';
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { RegistrationInProgressError, TransientAwsError } from '../../shared/errors';
import { provisionFromMessage } from '../../shared/provisioning/provision-from-message';
import {
  aRequest,
  awsError,
  claimFindsExisting,
  existingRegistration,
  mockedProvisioning,
  type MockedProvisioning,
} from '../support/provisioning-fakes';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const body = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({ registrationId: 'reg-1', request: aRequest(), ...overrides });

describe('provisionFromMessage', () => {
  let m: MockedProvisioning;
  beforeEach(() => {
    m = mockedProvisioning();
    m.deps.clock = () => NOW;
  });

  /** The queued registration the message names, as the table holds it; its failure is one transaction. */
  const queued = () => m.dynamoMock.on(GetCommand).resolves({ Item: existingRegistration({ state: 'QUEUED' }) });
  const failedRegistration = () =>
    m.dynamoMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Update;

  it('provisions a valid message', async () => {
    expect(await provisionFromMessage(body(), NOW, m.deps)).toBe('provisioned');
    expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(1);
  });

  it.each([
    ['not JSON', '{"registrationId":"reg-1",'],
    ['a missing request', JSON.stringify({ registrationId: 'reg-1' })],
    ['an extra field', body({ extra: true })],
    ['a bad email', body({ request: aRequest({ email: 'not-an-address' }) })],
  ])('rejects %s without an API Gateway call, recording it where it can', async (_, raw) => {
    expect(await provisionFromMessage(raw, NOW, m.deps)).toBe('rejected');
    expect(m.apiGatewayMock.calls()).toHaveLength(0);
  });

  it('records a malformed message on the registration it names, and frees the customer it reserved', async () => {
    queued();

    await provisionFromMessage(body({ request: { customerId: 42 } }), NOW, m.deps);

    const update = failedRegistration();
    expect(update?.Key).toEqual({ pk: 'REG#reg-1', sk: 'REG' });
    expect(update?.ExpressionAttributeValues).toMatchObject({
      ':failed': 'FAILED',
      ':reason': 'invalid-message',
      ':detail': 'request.customerId must be a string',
    });
    const customer = m.dynamoMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[1]?.Update;
    expect(customer?.Key).toEqual({ pk: 'CUSTOMER#cust-1', sk: 'PROFILE' });
  });

  it('rejects and records a tier that is no longer in the tier map', async () => {
    queued();

    expect(await provisionFromMessage(body({ request: aRequest({ tier: 'legacy' }) }), NOW, m.deps)).toBe('rejected');
    expect(failedRegistration()?.ExpressionAttributeValues).toMatchObject({ ':reason': 'unknown-tier' });
  });

  it('acknowledges a registration that API Gateway refused (rolled back and recorded)', async () => {
    m.apiGatewayMock.on(CreateUsagePlanKeyCommand).rejects(awsError('NotFoundException', 404));

    expect(await provisionFromMessage(body(), NOW, m.deps)).toBe('rejected');
  });

  it('throws on throttling, so the message returns to the queue', async () => {
    m.apiGatewayMock.on(CreateUsagePlanKeyCommand).rejects(awsError('TooManyRequestsException', 429));

    await expect(provisionFromMessage(body(), NOW, m.deps)).rejects.toBeInstanceOf(TransientAwsError);
  });

  it('throws while another attempt holds the lease', async () => {
    claimFindsExisting(m, existingRegistration({ attemptId: 'other', leaseExpiresAt: NOW.getTime() + 30_000 }));

    await expect(provisionFromMessage(body(), NOW, m.deps)).rejects.toBeInstanceOf(RegistrationInProgressError);
  });
});
