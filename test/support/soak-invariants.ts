import { type ApiKey, GetApiKeysCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { TestClients } from './aws-test-clients';
import { itemsOfCustomer, type SentEmail } from './emulator-probe';

/**
 * keyplan's invariants over what the emulator holds, read with clients that talk to it directly
 * (no fault proxy in between). Each broken invariant is one line naming the registration, customer
 * or key, never a key value.
 */
export interface SoakSubject {
  tableName: string;
  keyNamePrefix: string;
  tierMap: Readonly<Record<string, string>>;
  /** Each customer with its email address and the tier the portal last set (registration or tier change). */
  customers: ReadonlyMap<string, { email: string; tier: string }>;
  registrationIds: readonly string[];
}

export interface SoakEvidence {
  logLines: readonly string[];
  /** Every key value seen during the run (value -> key id), deleted keys' included. */
  keyValues: ReadonlyMap<string, string>;
  /** Every email the emulator sent, in order. */
  sentEmails: readonly SentEmail[];
}

export interface InvariantReport {
  violations: string[];
  checked: { registrations: number; customers: number; liveKeys: number; managedKeys: number; logLines: number; keyValues: number };
}

const LIVE = new Set(['ACTIVE', 'RETIRING']);
/** States in which a key item still has a job to do on its key: anything else must not leave a key behind. */
const TRACKED = new Set(['ACTIVE', 'RETIRING', 'DISABLED']);

/** Every key of the prefix in API Gateway, with its value. */
export async function keysOfPrefix(direct: TestClients, prefix: string): Promise<ApiKey[]> {
  const keys: ApiKey[] = [];
  let position: string | undefined;
  do {
    const page = await direct.apiGateway.send(
      new GetApiKeysCommand({ nameQuery: `${prefix}-`, includeValues: true, limit: 500, position }),
    );
    keys.push(...(page.items ?? []).filter((key) => key.name?.startsWith(`${prefix}-`)));
    position = page.position;
  } while (position);
  return keys;
}

/** Every email the emulator has sent, in sending order (moto keeps them: /moto-api/data.json). */
export async function allSentEmails(endpoint: string): Promise<SentEmail[]> {
  const data = (await (await fetch(`${endpoint}/moto-api/data.json`)).json()) as { ses?: { Message?: SentEmail[] } };
  return data.ses?.Message ?? [];
}

/** Adds the values of the prefix's keys that exist now to `values` (value -> key id). */
export async function collectKeyValues(direct: TestClients, prefix: string, values: Map<string, string>): Promise<void> {
  for (const key of await keysOfPrefix(direct, prefix)) if (key.value && key.id) values.set(key.value, key.id);
}

async function plansByKey(direct: TestClients, planIds: Iterable<string>): Promise<Map<string, string[]>> {
  const plans = new Map<string, string[]>();
  for (const usagePlanId of new Set(planIds)) {
    let position: string | undefined;
    do {
      const page = await direct.apiGateway.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 500, position }));
      for (const key of page.items ?? []) plans.set(String(key.id), [...(plans.get(String(key.id)) ?? []), usagePlanId]);
      position = page.position;
    } while (position);
  }
  return plans;
}

/**
 * 1. Every registration is ACTIVE, or FAILED with a reason: none stuck QUEUED, PENDING or EMAIL_PENDING.
 * 2. Every live key item (ACTIVE, RETIRING) names an enabled key that is in exactly one usage plan,
 *    the plan of its customer's current tier, and the item says so too.
 * 3. Every managed key of the prefix in API Gateway has a key item that still tracks it (ACTIVE,
 *    RETIRING, or DISABLED with the key disabled): no orphan.
 * 4. No key value appears in any log line.
 * 5. Every customer is in the tier the portal last set, and the last key email it got carries the
 *    value of one of its ACTIVE keys (not a key rotated away, not a key that no longer exists).
 */
export async function checkInvariants(direct: TestClients, subject: SoakSubject, evidence: SoakEvidence): Promise<InvariantReport> {
  const violations: string[] = [];
  const { tierMap } = subject;

  const registrationStates = new Map<string, string>();
  for (const registrationId of subject.registrationIds) {
    const { Item: registration } = await direct.dynamo.send(
      new GetCommand({ TableName: subject.tableName, Key: { pk: `REG#${registrationId}`, sk: 'REG' }, ConsistentRead: true }),
    );
    const state = String(registration?.state);
    registrationStates.set(registrationId, state);
    if (!registration) violations.push(`registration ${registrationId}: missing`);
    else if (state === 'FAILED' && !registration.failureReason) violations.push(`registration ${registrationId}: FAILED without a reason`);
    else if (state !== 'ACTIVE' && state !== 'FAILED') {
      const lease = Number(registration.leaseExpiresAt ?? 0) > Date.now() ? 'lease still held' : 'lease expired';
      violations.push(`registration ${registrationId}: stuck ${state} (${lease})`);
    }
  }

  const keys = await keysOfPrefix(direct, subject.keyNamePrefix);
  const managed = keys.filter((key) => key.tags?.['keyplan:managed'] === 'true');
  const apiKeys = new Map(keys.map((key) => [String(key.id), key]));
  const plans = await plansByKey(direct, Object.values(tierMap));
  const records = new Map<string, Record<string, unknown>>();
  let liveKeys = 0;

  const emailsTo = new Map<string, SentEmail[]>();
  for (const email of evidence.sentEmails) {
    for (const to of email.destinations.ToAddresses ?? []) emailsTo.set(to, [...(emailsTo.get(to) ?? []), email]);
  }
  const keyValues = [...evidence.keyValues];

  for (const [customerId, expectation] of subject.customers) {
    const items = await itemsOfCustomer(direct.dynamo, subject.tableName, customerId);
    const profile = items.find((item) => item.sk === 'PROFILE');
    const keyItems = items.filter((item) => String(item.sk).startsWith('KEY#'));
    for (const item of keyItems) records.set(String(item.keyId), item);
    if (registrationStates.get(customerId) === 'ACTIVE') {
      if (!profile) violations.push(`customer ${customerId}: registration ACTIVE but no customer profile`);
      if (!keyItems.some((item) => item.state === 'ACTIVE')) violations.push(`customer ${customerId}: registration ACTIVE but no ACTIVE key`);
    }
    const tier = String(profile?.tier);
    const expected = tierMap[tier];
    if (profile && tier !== expectation.tier) violations.push(`customer ${customerId}: tier ${tier}, the portal last set ${expectation.tier}`);
    const active = new Set(keyItems.filter((item) => item.state === 'ACTIVE').map((item) => String(item.keyId)));
    if (active.size > 0) {
      const keyEmails = (emailsTo.get(expectation.email) ?? [])
        .map((email) => keyValues.filter(([value]) => email.body.includes(value)).map(([, keyId]) => keyId))
        .filter((keyIds) => keyIds.length > 0);
      const lastEmailed = keyEmails.at(-1) ?? [];
      if (!lastEmailed.some((keyId) => active.has(keyId))) {
        const states = lastEmailed.map((keyId) => `${keyId} (${String(keyItems.find((i) => i.keyId === keyId)?.state ?? 'no item')})`);
        violations.push(`customer ${customerId}: the last key email carries ${states.join(', ') || 'no known key'}, not an ACTIVE key`);
      }
    }
    for (const item of keyItems.filter((i) => LIVE.has(String(i.state)))) {
      liveKeys++;
      const keyId = String(item.keyId);
      const where = `key ${keyId} (${String(item.state)}) of ${customerId}, tier ${tier}`;
      const apiKey = apiKeys.get(keyId);
      if (!apiKey) {
        violations.push(`${where}: not in API Gateway`);
        continue;
      }
      if (!apiKey.enabled) violations.push(`${where}: disabled in API Gateway`);
      const inPlans = plans.get(keyId) ?? [];
      if (inPlans.length !== 1 || inPlans[0] !== expected) {
        violations.push(`${where}: in plans [${inPlans.join(', ')}], expected exactly [${String(expected)}]`);
      }
      if (item.usagePlanId !== expected) violations.push(`${where}: its item says plan ${String(item.usagePlanId)}, expected ${String(expected)}`);
    }
  }

  for (const key of managed) {
    const keyId = String(key.id);
    const record = records.get(keyId);
    const state = record ? String(record.state) : undefined;
    const where = `key ${keyId} of ${String(key.tags?.['keyplan:customer'])}`;
    if (!state || !TRACKED.has(state)) violations.push(`orphan: ${where} has ${state ? `a ${state} item` : 'no item'}`);
    else if (state === 'DISABLED' && key.enabled) violations.push(`${where}: its item is DISABLED, the key is enabled`);
  }

  for (const [value, keyId] of evidence.keyValues) {
    const leaks = evidence.logLines.filter((line) => line.includes(value)).length;
    if (leaks > 0) violations.push(`key value of ${keyId} in ${leaks} log line(s)`);
  }

  return {
    violations,
    checked: {
      registrations: subject.registrationIds.length,
      customers: subject.customers.size,
      liveKeys,
      managedKeys: managed.length,
      logLines: evidence.logLines.length,
      keyValues: evidence.keyValues.size,
    },
  };
}
