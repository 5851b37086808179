import { CreateApiKeyCommand, GetApiKeyCommand, GetUsagePlanCommand } from '@aws-sdk/client-api-gateway';
import { QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
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
function customerNow(m: MockedProvisioning, now: { tier: string; keyState: string; usagePlanId: string }) {
  const common = { customerId: 'cust-1', registrationId: 'reg-1', createdAt: '2026-03-01T11:00:00.000Z' };
  m.dynamoMock.on(QueryCommand).resolves({
    Items: [
      { pk: 'CUSTOMER#cust-1', sk: 'PROFILE', ...common, email: 'ada@example.com', tier: now.tier, status: 'ACTIVE', updatedAt: common.createdAt },
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

const recordKeyWrite = (m: MockedProvisioning) => {
  // The first transaction is the claim that found the registration; the second records the key.
  const items = m.dynamoMock.commandCalls(TransactWriteCommand)[1]?.args[0].input.TransactItems ?? [];
  return { registration: items[0]?.Update, key: items[1]?.Update, profile: items[2]?.Update };
};

describe('provisionKey finishing a registration whose email was owed', () => {
  let m: MockedProvisioning;
  beforeEach(() => {
    m = mockedProvisioning();
    const owed = { state: 'EMAIL_PENDING' as const, keyId: KEY_ID, keyFingerprint: FINGERPRINT };
    claimFindsExisting(m, existingRegistration(owed));
    m.dynamoMock.on(UpdateCommand).resolves({ Attributes: existingRegistration({ ...owed, attemptId: 'resumed' }) });
    m.apiGatewayMock.on(GetApiKeyCommand).resolves({ id: KEY_ID, value: KEY_VALUE });
  });
  const finish = () => provisionKey({ registrationId: 'reg-1', request: aRequest(), now: NOW }, m.deps);

  it('keeps a tier change made since: the email and the records follow the current tier', async () => {
    customerNow(m, { tier: 'pro', keyState: 'ACTIVE', usagePlanId: PLAN_PRO });

    const result = await finish();

    expect(result.registration).toMatchObject({ state: 'ACTIVE', tier: 'free' });
    const written = recordKeyWrite(m);
    expect(written.key?.ExpressionAttributeValues).toMatchObject({ ':plan': PLAN_PRO, ':tier': 'pro' });
    expect(written.profile?.ExpressionAttributeValues).toMatchObject({ ':tier': 'pro' });
    expect(m.apiGatewayMock.commandCalls(GetUsagePlanCommand)[0]?.args[0].input.usagePlanId).toBe(PLAN_PRO);
    expect(m.sesMock.commandCalls(SendEmailCommand)[0]?.args[0].input.Message?.Body?.Text?.Data).toContain(KEY_VALUE);
  });

  it('does not email a key a rotation replaced since, and completes the registration', async () => {
    customerNow(m, { tier: 'free', keyState: 'RETIRING', usagePlanId: PLAN_FREE });

    const result = await finish();

    expect(result.registration.state).toBe('ACTIVE');
    expect(m.sesMock.commandCalls(SendEmailCommand)).toHaveLength(0);
    expect(m.apiGatewayMock.commandCalls(GetApiKeyCommand)).toHaveLength(0);
    const written = recordKeyWrite(m);
    expect(written.registration?.ExpressionAttributeValues).toMatchObject({ ':state': 'ACTIVE', ':fp': FINGERPRINT });
  });

  it('sends the owed email when nothing changed, without creating another key', async () => {
    customerNow(m, { tier: 'free', keyState: 'ACTIVE', usagePlanId: PLAN_FREE });

    const result = await finish();

    expect(result.registration).toMatchObject({ state: 'ACTIVE', keyId: KEY_ID });
    expect(m.apiGatewayMock.commandCalls(CreateApiKeyCommand)).toHaveLength(0);
    expect(m.sesMock.commandCalls(SendEmailCommand)[0]?.args[0].input.Message?.Body?.Text?.Data).toContain(KEY_VALUE);
    expect(recordKeyWrite(m).key?.ExpressionAttributeValues).toMatchObject({ ':plan': PLAN_FREE, ':tier': 'free' });
  });
});
