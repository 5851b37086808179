import { CreateApiKeyCommand, GetApiKeyCommand, GetUsagePlanCommand } from '@aws-sdk/client-api-gateway';
import { QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { SendEmailCommand } from '@aws-sdk/client-ses';
import { beforeEach, describe, expect, it } from 'vitest';
import { provisionKey } from '../../shared/provisioning/provision-key';
import {
  aRequest,
  claimFindsExisting,
  existingRegistration,
  KEY_ID,
  KEY_VALUE,
  mockedProvisioning,
  type MockedProvisioning,
  PLAN_FREE,
  PLAN_PRO,
} from '../support/provisioning-fakes';

// Found by the soak (test/integration/soak.test.ts): a registration left EMAIL_PENDING (an SES
// outage) was finished later, by the resume sweep or a repeated request, after the customer had
// changed tier or rotated the key. Finishing it put the registration's old tier back on the
// customer and the key item (the reconciler then moved the key back into the old plan), and
// emailed the key the rotation had replaced.

const NOW = new Date('2026-03-01T12:00:00.000Z');
const FINGERPRINT = 'abcd1234';

/** The customer's partition as the table holds it now: the profile and the registration's key. */
function customerNow(
  m: MockedProvisioning,
  now: { tier: string; keyState: string; usagePlanId: string; status?: string; eventSeq?: number },
) {
  const common = { customerId: 'cust-1', registrationId: 'reg-1', createdAt: '2026-03-01T11:00:00.000Z' };
  m.dynamoMock.on(QueryCommand).resolves({
    Items: [
      {
        pk: 'CUSTOMER#cust-1',
        sk: 'PROFILE',
        ...common,
        email: 'ada@example.com',
        tier: now.tier,
        status: now.status ?? 'ACTIVE',
        updatedAt: common.createdAt,
        ...(now.eventSeq === undefined ? {} : { eventSeq: now.eventSeq }),
      },
      {
        pk: 'CUSTOMER#cust-1',
        sk: `KEY#${KEY_ID}`,
        ...common,
        keyId: KEY_ID,
        state: now.keyState,
        usagePlanId: now.usagePlanId,
        tier: now.tier,
        fingerprint: FINGERPRINT,
        generation: 1,
      },
    ],
  });
}

/**
 * The write that settles the owed email: the customer's lease released with what the customer was
 * told (profile, first) and the registration completed (last), then the events of the change (the
 * outbox). The first transaction is the claim that found the registration, the second the
 * take-over of it and of the customer.
 */
const settlingWrite = (m: MockedProvisioning) => {
  const items = m.dynamoMock.commandCalls(TransactWriteCommand)[2]?.args[0].input.TransactItems ?? [];
  const isEvent = (item: (typeof items)[number]) => String(item.Put?.Item?.sk).startsWith('EVENT#');
  const writes = items.filter((item) => !isEvent(item));
  return {
    profile: writes[0]?.Update,
    registration: writes.at(-1)?.Update,
    count: writes.length,
    events: items.filter(isEvent).map((item) => item.Put?.Item),
  };
};

describe('provisionKey finishing a registration whose email was owed', () => {
  let m: MockedProvisioning;
  beforeEach(() => {
    m = mockedProvisioning();
    m.deps.clock = () => NOW;
    const owed = { state: 'EMAIL_PENDING' as const, keyId: KEY_ID, keyFingerprint: FINGERPRINT };
    claimFindsExisting(m, existingRegistration(owed));
    m.apiGatewayMock.on(GetApiKeyCommand).resolves({ id: KEY_ID, value: KEY_VALUE });
  });
  const finish = () => provisionKey({ registrationId: 'reg-1', request: aRequest(), now: NOW }, m.deps);

  it('quotes the tier of now and writes no tier or plan back: a tier change made since stands', async () => {
    customerNow(m, { tier: 'pro', keyState: 'ACTIVE', usagePlanId: PLAN_PRO });

    const result = await finish();

    expect(result.registration).toMatchObject({ state: 'ACTIVE', tier: 'free' });
    expect(m.apiGatewayMock.commandCalls(GetUsagePlanCommand)[0]?.args[0].input.usagePlanId).toBe(PLAN_PRO);
    expect(m.sesMock.commandCalls(SendEmailCommand)[0]?.args[0].input.Message?.Body?.Text?.Data).toContain(KEY_VALUE);
    const written = settlingWrite(m);
    // The customer and its registration only: no key item, and no tier, plan or status in the profile.
    expect(written.count).toBe(2);
    expect(written.profile?.UpdateExpression).not.toMatch(/\b(tier|usagePlanId)\b|#status/);
    expect(written.profile?.ConditionExpression).toContain('owner');
    expect(written.registration?.ExpressionAttributeValues).toMatchObject({ ':state': 'ACTIVE' });
    // The email that went out is a fact of the customer's, written with the write that settles it.
    expect(written.events).toEqual([
      expect.objectContaining({
        sk: 'EVENT#000000000001',
        sequence: 1,
        type: 'KeyEmailed',
        correlationId: written.registration?.ExpressionAttributeValues?.[':attemptId'],
        detail: { keyId: KEY_ID, fingerprint: FINGERPRINT, reason: 'owed' },
      }),
    ]);
    expect(written.profile?.ConditionExpression).toContain('(attribute_not_exists(eventSeq) OR eventSeq = :seenSeq)');
    expect(JSON.stringify(written.events)).not.toContain(KEY_VALUE);
  });

  it('does not email a key a rotation replaced since, and completes the registration', async () => {
    customerNow(m, { tier: 'free', keyState: 'RETIRING', usagePlanId: PLAN_FREE });

    const result = await finish();

    expect(result.registration.state).toBe('ACTIVE');
    expect(m.sesMock.commandCalls(SendEmailCommand)).toHaveLength(0);
    expect(m.apiGatewayMock.commandCalls(GetApiKeyCommand)).toHaveLength(0);
    const written = settlingWrite(m);
    expect(written.registration?.ExpressionAttributeValues).toMatchObject({ ':state': 'ACTIVE' });
    expect(JSON.stringify(written.profile?.ExpressionAttributeValues)).not.toContain(KEY_ID);
    // Nothing was emailed: no event, and the count is neither moved nor conditioned on.
    expect(written.events).toEqual([]);
    expect(written.profile?.UpdateExpression).not.toContain('eventSeq');
  });

  it('does not email a revoked customer, and the registration follows it: REVOKED', async () => {
    customerNow(m, { tier: 'free', keyState: 'DISABLED', usagePlanId: PLAN_FREE, status: 'REVOKED' });

    const result = await finish();

    expect(result.registration.state).toBe('REVOKED');
    expect(m.sesMock.commandCalls(SendEmailCommand)).toHaveLength(0);
    expect(settlingWrite(m).registration?.ExpressionAttributeValues).toMatchObject({ ':state': 'REVOKED' });
    expect(settlingWrite(m).events).toEqual([]);
  });

  it('sends the owed email when nothing changed, without creating another key, and records it as told', async () => {
    customerNow(m, { tier: 'free', keyState: 'ACTIVE', usagePlanId: PLAN_FREE, eventSeq: 4 });

    const result = await finish();

    expect(result.registration).toMatchObject({ state: 'ACTIVE', keyId: KEY_ID });
    expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(0);
    expect(m.sesMock.commandCalls(SendEmailCommand)[0]?.args[0].input.Message?.Body?.Text?.Data).toContain(KEY_VALUE);
    const written = settlingWrite(m);
    expect(JSON.stringify(written.profile?.ExpressionAttributeValues)).toContain(KEY_ID);
    // Numbered after the customer's count as read with the customer.
    expect(written.profile?.ExpressionAttributeValues).toMatchObject({ ':eventSeq': 5, ':seenSeq': 4 });
    expect(written.events).toEqual([
      expect.objectContaining({ sk: 'EVENT#000000000005', sequence: 5, type: 'KeyEmailed', detail: expect.objectContaining({ keyId: KEY_ID }) }),
    ]);
  });
});
