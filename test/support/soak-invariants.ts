import { type ApiKey, GetApiKeyCommand, GetApiKeysCommand, GetUsagePlanKeysCommand, GetUsagePlansCommand } from '@aws-sdk/client-api-gateway';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { ownKeyFilter } from '../../shared/reconcile/reconcile-keys';
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

// ---------------------------------------------------------------------------------------------
// The mixed soak (issue 13): every operation and every scheduled job at once, then DESIGN §7's
// invariants over the emulator's real state, the same the concurrency model checks.

/** A key keyplan must never touch (another stage's, another tool's), as it was before the run. */
export interface ForeignKeySnapshot {
  what: string;
  id: string;
  name: string;
  enabled: boolean;
  /** Every usage plan it is in, sorted. */
  plans: string[];
  tags: Record<string, string>;
}

export interface MixedSoakSubject {
  tableName: string;
  keyNamePrefix: string;
  stage: string;
  tierMap: Readonly<Record<string, string>>;
  /** Every customer of the run, with the address its key emails go to. */
  customers: ReadonlyMap<string, { email: string }>;
  /** Every registration id the run used (refused ones included: those may have no item). */
  registrationIds: readonly string[];
  /** The keys of other stages and tools, as they were before the run. */
  foreignKeys: readonly ForeignKeySnapshot[];
  /**
   * Customers whose tier only billing events changed, every one of them acknowledged: the tier of
   * the newest event (newest wins, whatever the order of delivery).
   */
  newestEventTiers?: ReadonlyMap<string, string>;
}

export interface MixedSoakEvidence {
  logLines: readonly string[];
  /** Every key value seen during the run (value -> key id), deleted keys' included. */
  keyValues: ReadonlyMap<string, string>;
  /** Every email the emulator sent, in order. */
  sentEmails: readonly SentEmail[];
  /** Calls the service made whose path named a foreign key (the fault proxy's record). */
  foreignKeyCalls: readonly string[];
}

export interface MixedInvariantReport {
  violations: string[];
  /** What the sweep should have finished and did not: also violations, listed apart. */
  unsettled: string[];
  checked: {
    customers: number;
    revoked: number;
    registrations: number;
    ownKeys: number;
    enabledKeys: number;
    keyEmails: number;
    tableItems: number;
    logLines: number;
    keyValues: number;
    foreignKeys: number;
  };
}

/** The key value a key email carries (the text body's or the HTML body's), or undefined for any other email. */
export function keyValueOfEmail(email: SentEmail): string | undefined {
  return (
    /<p><code>([^<\s]+)<\/code><\/p>/.exec(email.body)?.[1] ??
    /Your API key is ready:\s+(\S+)/.exec(email.body)?.[1]
  );
}

/** Every item of the table, read consistently, page by page. */
export async function allTableItems(direct: TestClients, tableName: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await direct.dynamo.send(new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The usage plans a key is in (every plan of the account, the other stage's too), sorted. */
async function plansHolding(direct: TestClients, keyId: string): Promise<string[]> {
  const page = await direct.apiGateway.send(new GetUsagePlansCommand({ keyId, limit: 500 }));
  return (page.items ?? []).map((plan) => String(plan.id)).sort();
}

/** What the foreign keys look like now: taken before the run, compared after it. */
export async function snapshotForeignKeys(
  direct: TestClients,
  keys: readonly { what: string; id: string }[],
): Promise<ForeignKeySnapshot[]> {
  return Promise.all(
    keys.map(async ({ what, id }) => {
      const key = await direct.apiGateway.send(new GetApiKeyCommand({ apiKey: id }));
      return { what, id, name: String(key.name), enabled: key.enabled === true, plans: await plansHolding(direct, id), tags: key.tags ?? {} };
    }),
  );
}

const isLiveState = (state: unknown) => state === 'ACTIVE' || state === 'RETIRING';
const FINAL_REGISTRATION = new Set(['ACTIVE', 'FAILED', 'REVOKED']);

/**
 * What the sweep, the resume and the retirement should have finished, in the table's items: a
 * registration not ACTIVE, FAILED or REVOKED; a customer PENDING, holding a lease (one that must be
 * finished, or has not expired) or due for repair.
 */
function unsettledIn(
  items: readonly Record<string, unknown>[],
  subject: Pick<MixedSoakSubject, 'customers' | 'registrationIds'>,
  now: number,
): string[] {
  const lines: string[] = [];
  const byKey = new Map(items.map((item) => [`${String(item.pk)}|${String(item.sk)}`, item]));
  for (const registrationId of subject.registrationIds) {
    const registration = byKey.get(`REG#${registrationId}|REG`);
    if (registration && !FINAL_REGISTRATION.has(String(registration.state))) {
      lines.push(`registration ${registrationId} (customer ${String(registration.customerId)}) is ${String(registration.state)}`);
    }
  }
  for (const customerId of subject.customers.keys()) {
    const profile = byKey.get(`CUSTOMER#${customerId}|PROFILE`);
    if (!profile) continue;
    const lease = profile.lease as { owner?: string; operation?: string; until?: number; mustFinish?: boolean } | undefined;
    if (lease && (lease.mustFinish || Number(lease.until) >= now)) {
      lines.push(`customer ${customerId} is held by ${String(lease.operation)} (${String(lease.owner)}${lease.mustFinish ? ', must finish' : ''})`);
    } else if (profile.dueType === 'REPAIR') lines.push(`customer ${customerId} is due for repair`);
    if (profile.status === 'PENDING') lines.push(`customer ${customerId} is PENDING`);
  }
  return lines;
}

/** What is left unsettled now (see unsettledIn): the quiesce runs the sweep until this is empty. */
export async function findUnsettled(
  direct: TestClients,
  subject: Pick<MixedSoakSubject, 'tableName' | 'customers' | 'registrationIds'>,
): Promise<string[]> {
  return unsettledIn(await allTableItems(direct, subject.tableName), subject, Date.now());
}

/**
 * DESIGN §7's invariants over the emulator after the quiesce (the model's, test/support/in-memory-model.ts):
 * 1. A customer that is not revoked has at least one enabled key (when ACTIVE); every enabled key of
 *    it is in exactly one plan, its tier's, and is ACTIVE or RETIRING in its list; every live record
 *    of it names an enabled key in exactly that plan and says so.
 * 2. The key value most recently emailed to a customer that is not revoked still exists (a revoked
 *    customer's keys are deleted after their retention: it was told they stop working).
 * 3. A revoked customer has no enabled key.
 * 4. After the final reconcile, every key of the stage (tag and exact name pattern) has an item that
 *    tracks it (ACTIVE, RETIRING or DISABLED, the customer's list agreeing, a DISABLED one disabled),
 *    and every such item's key exists.
 * 5. The keys of another stage or prefix are as they were and no call named them.
 * 6. No key value in any log line or table item.
 * 7. Newest billing event wins: a customer whose tier only billing events set has the newest one's.
 * And settled: no registration unfinished, no customer PENDING, holding a lease or due for repair.
 */
export async function checkMixedInvariants(
  direct: TestClients,
  subject: MixedSoakSubject,
  evidence: MixedSoakEvidence,
): Promise<MixedInvariantReport> {
  const violations: string[] = [];
  const unsettled: string[] = [];
  const { tierMap } = subject;
  const now = Date.now();

  const items = await allTableItems(direct, subject.tableName);
  const profiles = new Map<string, Record<string, unknown>>();
  const keyItems = new Map<string, Record<string, unknown>[]>();
  const registrations = new Map<string, Record<string, unknown>>();
  for (const item of items) {
    const pk = String(item.pk);
    const sk = String(item.sk);
    if (pk.startsWith('CUSTOMER#') && sk === 'PROFILE') profiles.set(pk.slice('CUSTOMER#'.length), item);
    else if (pk.startsWith('CUSTOMER#') && sk.startsWith('KEY#')) {
      const customerId = pk.slice('CUSTOMER#'.length);
      keyItems.set(customerId, [...(keyItems.get(customerId) ?? []), item]);
    } else if (pk.startsWith('REG#') && sk === 'REG') registrations.set(pk.slice('REG#'.length), item);
  }

  unsettled.push(...unsettledIn(items, subject, now));

  const keys = await keysOfPrefix(direct, subject.keyNamePrefix);
  const apiKeys = new Map(keys.map((key) => [String(key.id), key]));
  const isOwnKey = ownKeyFilter(subject.keyNamePrefix, subject.stage);
  const ownKeys = keys.filter((key) =>
    isOwnKey({ id: String(key.id), name: String(key.name), createdAt: key.createdDate ?? new Date(0), tags: key.tags ?? {} }),
  );
  const plans = await plansByKey(direct, Object.values(tierMap));
  const valueToKeyId = new Map(keys.filter((key) => key.value).map((key) => [String(key.value), String(key.id)]));

  const emailsTo = new Map<string, SentEmail[]>();
  for (const email of evidence.sentEmails) {
    for (const to of email.destinations.ToAddresses ?? []) emailsTo.set(to, [...(emailsTo.get(to) ?? []), email]);
  }

  let revoked = 0;
  let enabledKeys = 0;
  let keyEmails = 0;
  for (const [customerId, { email }] of subject.customers) {
    const profile = profiles.get(customerId);
    const status = profile ? String(profile.status) : 'no record';
    const tier = profile ? String(profile.tier) : '-';
    const plan = profile ? tierMap[tier] : undefined;
    const list = (profile?.keys ?? {}) as Record<string, string>;
    const enabled = ownKeys.filter((key) => key.tags?.['keyplan:customer'] === customerId && key.enabled);
    enabledKeys += enabled.length;
    const where = `customer ${customerId} (${status}, tier ${tier})`;

    if (status === 'REVOKED') {
      revoked++;
      for (const key of enabled) violations.push(`${where}: revoked, but its key ${String(key.id)} is enabled`);
    } else {
      if (status === 'ACTIVE' && enabled.length === 0) violations.push(`${where}: ACTIVE but has no enabled key`);
      for (const key of enabled) {
        const keyId = String(key.id);
        const inPlans = plans.get(keyId) ?? [];
        if (inPlans.length !== 1 || inPlans[0] !== plan) {
          violations.push(`${where}: enabled key ${keyId} is in plans [${inPlans.join(', ')}], not exactly [${String(plan)}]`);
        }
        if (!isLiveState(list[keyId])) {
          violations.push(`${where}: enabled key ${keyId} is ${list[keyId] ?? 'not'} in the customer's list, not ACTIVE or RETIRING`);
        }
      }
      for (const item of (keyItems.get(customerId) ?? []).filter((i) => isLiveState(i.state))) {
        const keyId = String(item.keyId);
        const key = apiKeys.get(keyId);
        if (!key) continue; // judged below, with every tracked record
        const record = `${where}: ${String(item.state)} record of ${keyId}`;
        const inPlans = plans.get(keyId) ?? [];
        if (!key.enabled) violations.push(`${record} names a disabled key`);
        if (inPlans.length !== 1 || inPlans[0] !== plan) violations.push(`${record} names a key in [${inPlans.join(', ')}], not exactly [${String(plan)}]`);
        if (item.usagePlanId !== plan) violations.push(`${record} says plan ${String(item.usagePlanId)}, the tier's is ${String(plan)}`);
      }

      // The key the customer was told of last still works (exists: whether it is enabled is the
      // retirement's business once a later email named its successor, and there is none later).
      const carrying = (emailsTo.get(email) ?? []).filter((message) => keyValueOfEmail(message) !== undefined);
      keyEmails += carrying.length;
      const last = carrying.at(-1);
      const value = last ? keyValueOfEmail(last) : undefined;
      if (value !== undefined && !valueToKeyId.has(value)) {
        const known = evidence.keyValues.get(value);
        violations.push(
          `${where}: the key most recently emailed (${known ?? 'a key never seen in API Gateway'}, the last of ${carrying.length} key emails) no longer exists`,
        );
      }
    }

    const expectedTier = subject.newestEventTiers?.get(customerId);
    if (expectedTier !== undefined && profile && status !== 'REVOKED' && tier !== expectedTier) {
      violations.push(`${where}: the newest billing event set tier ${expectedTier}`);
    }
  }

  // After the reconcile: every key of the stage is tracked, and every tracked record's key exists.
  for (const key of ownKeys) {
    const keyId = String(key.id);
    const customerId = String(key.tags?.['keyplan:customer'] ?? '');
    const item = (keyItems.get(customerId) ?? []).find((i) => i.keyId === keyId);
    const state = item ? String(item.state) : undefined;
    const listed = ((profiles.get(customerId)?.keys ?? {}) as Record<string, string>)[keyId];
    const where = `after the reconcile, key ${keyId} of ${customerId} (${key.enabled ? 'enabled' : 'disabled'})`;
    if (!state || !TRACKED.has(state)) violations.push(`${where} has ${state ? `a ${state} record` : 'no record'}`);
    else if (listed !== state) violations.push(`${where}: its item is ${state}, the customer's list says ${listed ?? 'nothing'}`);
    else if (state === 'DISABLED' && key.enabled) violations.push(`${where} is recorded DISABLED but enabled`);
  }
  for (const [customerId, records] of keyItems) {
    if (!subject.customers.has(customerId)) continue;
    for (const item of records) {
      if (TRACKED.has(String(item.state)) && !apiKeys.has(String(item.keyId))) {
        violations.push(`after the reconcile, the ${String(item.state)} record of ${String(item.keyId)} (${customerId}) points to a key that is gone`);
      }
    }
  }

  // Another stage's and another tool's keys: as they were, and never named in a call.
  for (const before of subject.foreignKeys) {
    const [after] = await snapshotForeignKeys(direct, [before]).catch((error: { name?: string }) =>
      error.name === 'NotFoundException' ? [] : Promise.reject(error),
    );
    if (!after) {
      violations.push(`foreign key ${before.id} (${before.what}) was deleted`);
      continue;
    }
    const changed = (['name', 'enabled', 'plans', 'tags'] as const).filter((field) => JSON.stringify(before[field]) !== JSON.stringify(after[field]));
    if (changed.length > 0) {
      violations.push(
        `foreign key ${before.id} (${before.what}) changed: ${changed.map((field) => `${field} ${JSON.stringify(before[field])} -> ${JSON.stringify(after[field])}`).join(', ')}`,
      );
    }
  }
  for (const call of evidence.foreignKeyCalls) violations.push(`a foreign key was named in a call: ${call}`);

  // No key value in a log line or a table item.
  const values = new Map(evidence.keyValues);
  for (const [value, keyId] of valueToKeyId) values.set(value, keyId);
  const itemTexts = items.map((item) => ({ item, text: JSON.stringify(item) }));
  for (const [value, keyId] of values) {
    const leaks = evidence.logLines.filter((line) => line.includes(value)).length;
    if (leaks > 0) violations.push(`key value of ${keyId} in ${leaks} log line(s)`);
    for (const { item, text } of itemTexts) {
      if (text.includes(value)) violations.push(`key value of ${keyId} in table item ${String(item.pk)} / ${String(item.sk)}`);
    }
  }

  return {
    violations,
    unsettled,
    checked: {
      customers: subject.customers.size,
      revoked,
      registrations: subject.registrationIds.length,
      ownKeys: ownKeys.length,
      enabledKeys,
      keyEmails,
      tableItems: items.length,
      logLines: evidence.logLines.length,
      keyValues: values.size,
      foreignKeys: subject.foreignKeys.length,
    },
  };
}

/**
 * One customer as the emulator holds it, for a violation's report: its profile, its key items and
 * the keys of the prefix tagged with it (ids, states and plans; never a value).
 */
export async function describeCustomerState(
  direct: TestClients,
  subject: Pick<MixedSoakSubject, 'tableName' | 'keyNamePrefix' | 'tierMap'>,
  customerId: string,
): Promise<{ lines: string[]; keyIds: string[] }> {
  const items = await itemsOfCustomer(direct.dynamo, subject.tableName, customerId);
  const profile = items.find((item) => item.sk === 'PROFILE');
  const keyItems = items.filter((item) => String(item.sk).startsWith('KEY#'));
  const keys = (await keysOfPrefix(direct, subject.keyNamePrefix)).filter((key) => key.tags?.['keyplan:customer'] === customerId);
  const plans = await plansByKey(direct, Object.values(subject.tierMap));
  const lines = [
    `profile: ${
      profile
        ? JSON.stringify({
            status: profile.status,
            tier: profile.tier,
            keys: profile.keys,
            emailedKeyId: profile.emailedKeyId,
            registrationId: profile.registrationId,
            lease: profile.lease,
            dueType: profile.dueType,
            version: profile.version,
          })
        : 'none'
    }`,
    ...keyItems.map(
      (item) =>
        `key item ${String(item.keyId)}: ${String(item.state)}, plan ${String(item.usagePlanId)}, registration ${String(item.registrationId)}, generation ${String(item.generation)}, due ${String(item.dueType ?? '-')}`,
    ),
    ...keys.map(
      (key) =>
        `API Gateway key ${String(key.id)} ${String(key.name)}: ${key.enabled ? 'enabled' : 'disabled'}, stage ${String(key.tags?.['keyplan:stage'] ?? '-')}, plans [${(plans.get(String(key.id)) ?? []).join(', ')}]`,
    ),
  ];
  return { lines, keyIds: [...new Set([...keyItems.map((item) => String(item.keyId)), ...keys.map((key) => String(key.id))])] };
}
