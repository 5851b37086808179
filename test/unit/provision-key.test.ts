import {
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  GetApiKeyCommand,
  GetApiKeysCommand,
  GetUsagePlanCommand,
  GetUsagePlanKeyCommand,
} from '@aws-sdk/client-api-gateway';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { SendEmailCommand } from '@aws-sdk/client-ses';
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  CustomerAlreadyRegisteredError,
  CustomerBusyError,
  IdempotencyKeyReusedError,
  ProvisioningFailedError,
  RegistrationInProgressError,
  TransientAwsError,
  ValidationError,
} from '../../shared/errors';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { keyNameFor } from '../../shared/core/registration';
import {
  aRequest,
  awsError,
  claimFindsExisting,
  existingRegistration,
  KEY_ID,
  KEY_VALUE,
  mockedProvisioning,
  type MockedProvisioning,
  PLAN_FREE,
} from '../support/provisioning-fakes';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const run = (m: MockedProvisioning, request = aRequest(), registrationId = 'reg-1') =>
  provisionKey({ registrationId, request, now: NOW }, m.deps);

const transactions = (m: MockedProvisioning) =>
  m.dynamoMock.commandCalls(TransactWriteCommand).map((call) => call.args[0].input);

describe('provisionKey', () => {
  let m: MockedProvisioning;
  beforeEach(() => {
    m = mockedProvisioning();
    m.deps.clock = () => NOW;
  });

  describe('a fresh registration', () => {
    it('creates an enabled, tagged key and associates it by id, not by value', async () => {
      const result = await run(m);

      expect(result.outcome).toBe('created');
      expect(result.registration).toMatchObject({ state: 'ACTIVE', keyId: KEY_ID, usagePlanId: PLAN_FREE });
      const create = m.apiGatewayMock.commandCalls(CreateApiKeyCommand)[0]?.args[0].input;
      expect(create).toMatchObject({
        name: keyNameFor('keyplan-test', 'reg-1'),
        enabled: true,
        customerId: 'cust-1',
        tags: { 'keyplan:managed': 'true', 'keyplan:customer': 'cust-1', 'keyplan:registration': 'reg-1' },
      });
      expect(m.apiGatewayMock.commandCalls(CreateUsagePlanKeyCommand)[0]?.args[0].input).toEqual({
        usagePlanId: PLAN_FREE,
        keyId: KEY_ID,
        keyType: 'API_KEY',
      });
    });

    it('emails the key with the tier, the plan limits and the header to send it in', async () => {
      await run(m);

      const email = m.sesMock.commandCalls(SendEmailCommand)[0]?.args[0].input;
      expect(email?.Destination?.ToAddresses).toEqual(['ada@example.com']);
      for (const body of [email?.Message?.Body?.Text?.Data, email?.Message?.Body?.Html?.Data]) {
        expect(body).toContain(KEY_VALUE);
        expect(body).toContain('x-api-key');
        expect(body).toContain('free');
        expect(body).toContain('2 requests per second');
        expect(body).toContain('5 requests');
        expect(body).toContain('1000 requests per day');
      }
    });

    it('records a fingerprint of the key and never its value', async () => {
      await run(m);

      const stored = JSON.stringify(m.dynamoMock.calls().map((call) => call.args[0].input));
      expect(stored).not.toContain(KEY_VALUE);
      const fingerprint = createHash('sha256').update(KEY_VALUE).digest('hex').slice(0, 8);
      expect(stored).toContain(`":fp":"${fingerprint}"`);
      expect(transactions(m)).toHaveLength(2);
      // The record's events: the key made, then emailed, numbered 1 and 2 for a customer the
      // claim created; by id and fingerprint.
      const events = (transactions(m)[1]?.TransactItems ?? []).flatMap((item) =>
        String(item.Put?.Item?.sk).startsWith('EVENT#') ? [item.Put?.Item] : [],
      );
      expect(events).toEqual([
        expect.objectContaining({
          sequence: 1,
          type: 'KeyProvisioned',
          detail: expect.objectContaining({ keyId: KEY_ID, registrationId: 'reg-1', tier: 'free', usagePlanId: PLAN_FREE, fingerprint }),
        }),
        expect.objectContaining({ sequence: 2, type: 'KeyEmailed', detail: { keyId: KEY_ID, fingerprint, reason: 'registration' } }),
      ]);
    });

    it('makes five AWS calls once the plan limits are cached', async () => {
      await run(m, aRequest({ customerId: 'cust-warm' }), 'reg-warm');
      m.apiGatewayMock.resetHistory();
      m.dynamoMock.resetHistory();
      m.sesMock.resetHistory();

      await run(m);

      const calls = m.apiGatewayMock.calls().length + m.dynamoMock.calls().length + m.sesMock.calls().length;
      expect(calls).toBe(5);
      expect(m.apiGatewayMock.commandCalls(GetUsagePlanCommand)).toHaveLength(0);
    });

    it('refuses an unknown tier before any AWS call', async () => {
      await expect(run(m, aRequest({ tier: 'platinum' }))).rejects.toBeInstanceOf(ValidationError);
      expect(m.dynamoMock.calls()).toHaveLength(0);
      expect(m.apiGatewayMock.calls()).toHaveLength(0);
    });
  });

  describe('when the usage plan refuses the key', () => {
    it('deletes the key and records the registration FAILED with the reason', async () => {
      m.apiGatewayMock.on(CreateUsagePlanKeyCommand).rejects(awsError('NotFoundException', 404));

      await expect(run(m)).rejects.toMatchObject({ name: 'ProvisioningFailedError', reason: 'association-rejected' });

      expect(m.apiGatewayMock.commandCalls(DeleteApiKeyCommand)[0]?.args[0].input).toEqual({ apiKey: KEY_ID });
      const failure = transactions(m)[1]?.TransactItems;
      // The registration, the customer it reserved going back to what it was (and free), and the
      // failure's event.
      expect(failure).toHaveLength(3);
      expect(failure?.[0]?.Update?.ExpressionAttributeValues).toMatchObject({
        ':failed': 'FAILED',
        ':reason': 'association-rejected',
      });
      expect(failure?.[1]?.Update?.UpdateExpression).toMatch(/priorStatus/);
      expect(failure?.[1]?.Update?.UpdateExpression).toMatch(/REMOVE.*#lease/);
      expect(failure?.[2]?.Put?.Item).toMatchObject({
        sk: 'EVENT#000000000001',
        sequence: 1,
        type: 'RegistrationFailed',
        detail: { registrationId: 'reg-1', tier: 'free', reason: 'association-rejected' },
      });
      expect(m.sesMock.calls()).toHaveLength(0);
    });

    it('records the key as an orphan for clean-up when the rollback delete fails too', async () => {
      m.apiGatewayMock.on(CreateUsagePlanKeyCommand).rejects(awsError('BadRequestException'));
      m.apiGatewayMock.on(DeleteApiKeyCommand).rejects(awsError('InternalServerError', 500));

      const failure = await run(m).catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(ProvisioningFailedError);
      const items = transactions(m)[1]?.TransactItems ?? [];
      expect(items[0]?.Update?.ExpressionAttributeValues).toMatchObject({ ':orphan': KEY_ID });
      expect(items[1]?.Put?.Item).toMatchObject({
        sk: `KEY#${KEY_ID}`,
        state: 'ORPHANED',
        dueType: 'CLEANUP',
        keyId: KEY_ID,
      });
    });

    it('treats a conflict for a key already in this plan as success', async () => {
      m.apiGatewayMock.on(CreateUsagePlanKeyCommand).rejects(awsError('ConflictException', 409));
      m.apiGatewayMock.on(GetUsagePlanKeyCommand).resolves({ id: KEY_ID });

      const result = await run(m);

      expect(result.registration.state).toBe('ACTIVE');
      expect(m.apiGatewayMock.commandCalls(DeleteApiKeyCommand)).toHaveLength(0);
    });

    it('rolls back on a conflict because the key sits in another plan of the stage', async () => {
      m.apiGatewayMock.on(CreateUsagePlanKeyCommand).rejects(awsError('ConflictException', 409));
      m.apiGatewayMock.on(GetUsagePlanKeyCommand).rejects(awsError('NotFoundException', 404));

      await expect(run(m)).rejects.toBeInstanceOf(ProvisioningFailedError);
      expect(m.apiGatewayMock.commandCalls(DeleteApiKeyCommand)).toHaveLength(1);
    });
  });

  describe('when AWS throttles', () => {
    it('keeps the key, releases the lease and asks the caller to retry', async () => {
      m.apiGatewayMock.on(CreateUsagePlanKeyCommand).rejects(awsError('TooManyRequestsException', 429));

      const failure = await run(m).catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(TransientAwsError);
      expect((failure as TransientAwsError).retryAfterSeconds).toBeGreaterThan(0);
      expect(m.apiGatewayMock.commandCalls(DeleteApiKeyCommand)).toHaveLength(0);
      const release = m.dynamoMock.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(release?.ExpressionAttributeValues).toMatchObject({ ':zero': 0 });
    });

    it('retries a throttled CreateApiKey and gives up after its attempts', async () => {
      m.apiGatewayMock.on(CreateApiKeyCommand).rejects(awsError('TooManyRequestsException', 429));

      await expect(run(m)).rejects.toBeInstanceOf(TransientAwsError);
      expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(4);
      // A throttled create certainly did not happen: no lookup is needed between tries.
      expect(m.apiGatewayMock.commandCalls(GetApiKeysCommand)).toHaveLength(0);
    });

    it('looks the key up by name before repeating a create whose outcome is unknown', async () => {
      m.apiGatewayMock.on(CreateApiKeyCommand).rejectsOnce(awsError('InternalServerError', 500));
      m.apiGatewayMock.on(GetApiKeysCommand).resolves({
        items: [
          { id: 'other', name: `${keyNameFor('keyplan-test', 'reg-1')}-g2`, value: 'other-value' },
          { id: KEY_ID, name: keyNameFor('keyplan-test', 'reg-1'), value: KEY_VALUE },
        ],
      });

      const result = await run(m);

      expect(result.registration.keyId).toBe(KEY_ID);
      expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(1);
    });

    it('never adopts another stage\'s key of the same name', async () => {
      // Found by the mixed soak: two stages sharing a key-name prefix, a resumed attempt found the
      // other stage's key by its name and emailed and recorded it.
      m.apiGatewayMock.on(CreateApiKeyCommand).rejectsOnce(awsError('InternalServerError', 500)).resolves({ id: KEY_ID, value: KEY_VALUE });
      m.apiGatewayMock.on(GetApiKeysCommand).resolves({
        items: [{ id: 'theirs', name: keyNameFor('keyplan-test', 'reg-1'), value: 'their-value', tags: { 'keyplan:stage': 'prod' } }],
      });

      const result = await run(m);

      expect(result.registration.keyId).toBe(KEY_ID);
      expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(2);
      expect(JSON.stringify(m.sesMock.calls().map((call) => call.args[0].input))).not.toContain('their-value');
    });
  });

  describe('when the email fails', () => {
    it('keeps the key and leaves the registration EMAIL_PENDING', async () => {
      m.sesMock.on(SendEmailCommand).rejects(awsError('MessageRejected'));

      const result = await run(m);

      expect(result.registration.state).toBe('EMAIL_PENDING');
      expect(m.apiGatewayMock.commandCalls(DeleteApiKeyCommand)).toHaveLength(0);
      expect(transactions(m)[1]?.TransactItems?.[0]?.Update?.ExpressionAttributeValues).toMatchObject({
        ':state': 'EMAIL_PENDING',
      });
      // The key was made, not emailed: no KeyEmailed until the email goes out.
      const events = (transactions(m)[1]?.TransactItems ?? []).flatMap((item) =>
        String(item.Put?.Item?.sk).startsWith('EVENT#') ? [item.Put?.Item?.type] : [],
      );
      expect(events).toEqual(['KeyProvisioned']);
    });

    it('sends the email on the next attempt without creating another key', async () => {
      claimFindsExisting(m, existingRegistration({ state: 'EMAIL_PENDING', keyId: KEY_ID }));
      const customer = { pk: 'CUSTOMER#cust-1', customerId: 'cust-1', registrationId: 'reg-1', createdAt: NOW.toISOString() };
      m.dynamoMock.on(QueryCommand).resolves({
        Items: [
          { ...customer, sk: 'PROFILE', email: 'ada@example.com', tier: 'free', status: 'ACTIVE', updatedAt: NOW.toISOString() },
          { ...customer, sk: `KEY#${KEY_ID}`, keyId: KEY_ID, state: 'ACTIVE', usagePlanId: PLAN_FREE, tier: 'free', generation: 1 },
        ],
      });
      m.apiGatewayMock.on(GetApiKeyCommand).resolves({ id: KEY_ID, value: KEY_VALUE });

      const result = await run(m);

      expect(result.registration.state).toBe('ACTIVE');
      expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(0);
      expect(m.sesMock.commandCalls(SendEmailCommand)[0]?.args[0].input.Message?.Body?.Text?.Data).toContain(
        KEY_VALUE,
      );
    });
  });

  describe('a repeated registration id', () => {
    it('replays a finished registration with one read and no API Gateway call', async () => {
      claimFindsExisting(m, existingRegistration({ state: 'ACTIVE', keyId: KEY_ID }));

      const result = await run(m);

      expect(result).toMatchObject({ outcome: 'replayed', registration: { keyId: KEY_ID, state: 'ACTIVE' } });
      expect(m.dynamoMock.calls()).toHaveLength(1);
      expect(m.apiGatewayMock.calls()).toHaveLength(0);
      expect(m.sesMock.calls()).toHaveLength(0);
    });

    it('refuses another payload under the same id', async () => {
      claimFindsExisting(m, existingRegistration({ state: 'ACTIVE', payloadHash: 'another' }));

      await expect(run(m)).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    });

    it('answers in progress while another attempt holds the lease', async () => {
      claimFindsExisting(m, existingRegistration({ leaseExpiresAt: NOW.getTime() + 12_500 }));

      const failure = await run(m).catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(RegistrationInProgressError);
      expect((failure as RegistrationInProgressError).retryAfterSeconds).toBe(13);
      expect(m.apiGatewayMock.calls()).toHaveLength(0);
    });

    it('resumes after an expired lease by finding the key a crashed attempt created', async () => {
      claimFindsExisting(m, existingRegistration());
      m.dynamoMock.on(UpdateCommand).resolves({ Attributes: existingRegistration({ attemptId: 'new' }) });
      m.apiGatewayMock.on(GetApiKeysCommand).resolves({
        items: [{ id: KEY_ID, name: keyNameFor('keyplan-test', 'reg-1'), value: KEY_VALUE }],
      });

      const result = await run(m);

      expect(result.registration.state).toBe('ACTIVE');
      expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(0);
    });

    it('replays a FAILED registration as the recorded failure', async () => {
      claimFindsExisting(m, existingRegistration({ state: 'FAILED', failureReason: 'association-rejected' }));

      await expect(run(m)).rejects.toMatchObject({ name: 'ProvisioningFailedError', reason: 'association-rejected' });
      expect(m.apiGatewayMock.calls()).toHaveLength(0);
    });
  });

  describe('a customer registered under another id', () => {
    it('is refused at the claim, before any key is made or emailed', async () => {
      const taken = { pk: 'CUSTOMER#cust-1', sk: 'PROFILE', customerId: 'cust-1', registrationId: 'reg-0', status: 'PENDING' };
      m.dynamoMock.on(TransactWriteCommand).rejects(
        new TransactionCanceledException({
          message: 'Transaction cancelled',
          $metadata: {},
          CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed', Item: marshall(taken) }],
        }),
      );

      await expect(run(m)).rejects.toBeInstanceOf(CustomerAlreadyRegisteredError);
      expect(m.apiGatewayMock.calls()).toHaveLength(0);
      expect(m.sesMock.calls()).toHaveLength(0);
    });

    it('answers busy, with the wait, while another operation holds the customer', async () => {
      const held = {
        pk: 'CUSTOMER#cust-1',
        sk: 'PROFILE',
        customerId: 'cust-1',
        registrationId: 'reg-0',
        status: 'REVOKED',
        lease: { owner: 'revoke-1', operation: 'revoke', until: NOW.getTime() + 20_000, mustFinish: true },
      };
      m.dynamoMock.on(TransactWriteCommand).rejects(
        new TransactionCanceledException({
          message: 'Transaction cancelled',
          $metadata: {},
          CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed', Item: marshall(held) }],
        }),
      );

      const failure = await run(m, aRequest({ reactivate: true })).catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(CustomerBusyError);
      expect((failure as CustomerBusyError).retryAfterSeconds).toBe(20);
      expect(m.apiGatewayMock.calls()).toHaveLength(0);
    });
  });

  describe('an attempt whose lease runs out', () => {
    it('stops before making a key, leaving the rest to the next attempt', async () => {
      // The claim is taken at NOW; every later look at the clock is past two thirds of the lease.
      let looks = 0;
      m.deps.clock = () => new Date(NOW.getTime() + (looks++ === 0 ? 0 : 45_000));

      await expect(run(m)).rejects.toBeInstanceOf(RegistrationInProgressError);
      expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(0);
      expect(m.sesMock.calls()).toHaveLength(0);
    });
  });
});
