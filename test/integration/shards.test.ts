import { createHash } from 'node:crypto';
import {
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetUsageCommand,
} from '@aws-sdk/client-api-gateway';
import { GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { startQueuePoller } from '../../infra/local/queue-poller';
import { createAwsClients } from '../../shared/aws/clients';
import { RegistrationTable } from '../../shared/aws/registration-table';
import { profileKey, regKey, shardKey } from '../../shared/aws/table-keys';
import { type Config, loadConfig } from '../../shared/config';
import { shardOfKeyValue } from '../../shared/core/key-value';
import { DAY_MS } from '../../shared/core/model';
import { placementOrder, shardOf } from '../../shared/core/shards';
import { changeTier } from '../../shared/customers/change-tier';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import { NoShardCapacityError, ShardUnavailableError } from '../../shared/errors';
import { httpHandler } from '../../shared/http/handler';
import { importRegistrations } from '../../shared/provisioning/import-registrations';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';
import { retireDueKeys, rotateCustomerKeys, rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import { drainShard } from '../../shared/shards/drain-shard';
import { getCustomerUsage, type UsageDeps } from '../../shared/usage/get-customer-usage';
import {
  createCustomerDeps,
  createDrainDeps,
  createEnqueueDeps,
  createProvisioningDeps,
  createReconcileDeps,
  createRotationDeps,
  createUsageDeps,
  createWorkerDeps,
} from '../../shared/wiring/compose';
import { customerUsageRoutes } from '../../functions/customer-usage/routes';
import { provisioningBatchHandler } from '../../functions/provision-worker/batch';
import { registerRoutes } from '../../functions/register/routes';
import { apiEvent, lambdaContext, postRegistration } from '../support/api-events';
import { existingRegistration } from '../support/provisioning-fakes';
import { createQueuePair, eventually, queueDepth, sentEmailsTo } from '../support/emulator-probe';
import { calledAt, changedShards, sentEmails, ShardProbe } from '../support/shard-probe';
import { startStsTrustPolicy } from '../support/sts-trust-policy';

// Each part of this file bootstraps a multi-shard stack of its own in the shared emulator: its own
// table (so its own SHARD items and counts), its own key name prefix, and one stage for the file
// (its REST API and plans in each shard's account and Region, and the `keyplan:stage` tag of every
// key made here). Other test files use other stages and prefixes: nothing here sees their keys,
// nor they ours. Every shard has a key ceiling of 100, so a high-water mark of 80 keys.
const emulator = inject('localStack');
const STAGE = `shards-${process.pid}-${Date.now().toString(36)}`;
const CEILING = 100;
const HIGH_WATER = 80;
let runId = 0;
const unique = (label: string) => `${label}${process.pid}x${Date.now().toString(36)}x${++runId}`;
const aws = createAwsClients();

interface ShardedStack {
  stack: LocalStack;
  config: Config;
  env: Record<string, string>;
  probe: ShardProbe;
}
const probes: ShardProbe[] = [];

async function shardedStack(label: string, shards = 3): Promise<ShardedStack> {
  const stack = await bootstrapLocalStack({
    endpoint: emulator.endpoint,
    stage: STAGE,
    tableName: unique(`keyplan-${label}-`),
    shards,
    shardKeyCeiling: CEILING,
  });
  // The SDK clients read the emulator's endpoint, Region and credentials from the environment.
  Object.assign(process.env, functionEnvironment(stack));
  const env = {
    ...functionEnvironment(stack),
    STAGE,
    KEY_NAME_PREFIX: unique(label),
    // Each shard's management budget: plenty, so that pacing does not set the test's pace.
    MANAGEMENT_CALLS_PER_SECOND: '1000',
    GRACE_DAYS: '7',
    REMINDER_DAYS: '2',
  };
  const config = loadConfig(env);
  const probe = new ShardProbe(stack, { stage: STAGE, namePrefix: config.keyNamePrefix });
  probes.push(probe);
  return { stack, config, env, probe };
}

afterAll(() => {
  for (const probe of probes) probe.destroy();
});

/** A new customer id that placement tries on `shardId` first (placementOrder hashes the id). */
function customerPlacedOn(config: Config, shardId: string, label = 'cust'): string {
  for (;;) {
    const customerId = unique(label);
    if (placementOrder(config.shards, customerId)[0]?.id === shardId) return customerId;
  }
}

async function register(config: Config, customerId: string, tier = 'free') {
  const request = { customerId, email: `${customerId}@example.com`, tier };
  const { registration } = await provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(config));
  return { customerId, email: request.email, tier, keyId: String(registration.keyId), shard: String(registration.shard) };
}
type Registered = Awaited<ReturnType<typeof register>>;

const shardItem = async (config: Config, shardId: string) =>
  (await aws.dynamo.send(new GetCommand({ TableName: config.tableName, Key: shardKey(shardId), ConsistentRead: true }))).Item;

const profileOf = async (config: Config, customerId: string) =>
  (await aws.dynamo.send(new GetCommand({ TableName: config.tableName, Key: profileKey(customerId), ConsistentRead: true }))).Item;

const keysOf = (config: Config, customerId: string) => createRotationDeps(config).keyStore.keysOf(customerId);

/** Sets a SHARD item's counts, as registrations (placedKeys) or the reconciler (inventoryKeys) would have. */
async function setShardCount(config: Config, shardId: string, attribute: 'placedKeys' | 'inventoryKeys', keys: number) {
  await aws.dynamo.send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: shardKey(shardId),
      UpdateExpression: 'SET #count = :keys',
      ExpressionAttributeNames: { '#count': attribute },
      ExpressionAttributeValues: { ':keys': keys },
    }),
  );
}

const parse = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;

describe('200 customers imported onto three shards', () => {
  const ROWS = 200;
  const TIERS = ['free', 'basic', 'pro'] as const;
  const domain = `${unique('imp')}.example.com`;
  let sharded: ShardedStack;
  let importCounts: Record<string, number>;
  let dlqDepth: number;
  /** shard -> the customers whose messages its provisioning queue delivered */
  const deliveredBy = new Map<string, Set<string>>();
  /** customer id -> its tier, as imported */
  const tierOf = new Map<string, string>();

  beforeAll(async () => {
    sharded = await shardedStack('imp');
    // A provisioning queue per shard, as deployed: the home shard's QUEUE_URL, each other's own.
    const queues = await Promise.all(
      sharded.config.shards.map(async (shard) => ({ shard: shard.id, ...(await createQueuePair(aws.sqs, unique(`keyplan-shards-${shard.id}-`))) })),
    );
    const [home, ...others] = queues;
    const config = loadConfig({
      ...sharded.env,
      QUEUE_URL: home!.queueUrl,
      QUEUE_URLS: JSON.stringify(Object.fromEntries(others.map((queue) => [queue.shard, queue.queueUrl]))),
    });
    const requests = Array.from({ length: ROWS }, (_, n) => {
      const customerId = `c${n}-${domain.split('.')[0]}`;
      const tier = TIERS[n % TIERS.length] ?? 'free';
      tierOf.set(customerId, tier);
      return { customerId, email: `${customerId}@${domain}`, tier };
    });
    async function* rows() {
      for (const [index, fields] of requests.entries()) yield { line: index + 2, fields };
    }

    // The import (what `npm run import` runs) queues every row; the worker, fed by a poller as the
    // event source mapping feeds it, provisions them.
    const summary = await importRegistrations(rows(), createEnqueueDeps(config), { concurrency: 8 });
    importCounts = summary.counts;
    // One poller per queue, as each queue's event source mapping feeds the one worker function.
    const worker = provisioningBatchHandler(createWorkerDeps(config));
    const pollers = queues.map(({ shard, queueUrl }) =>
      startQueuePoller({
        sqs: aws.sqs,
        queueUrl,
        handler: async (event, context) => {
          const delivered = deliveredBy.get(shard) ?? new Set<string>();
          deliveredBy.set(shard, delivered);
          for (const record of event.Records) delivered.add(String((JSON.parse(record.body) as { request?: { customerId?: unknown } }).request?.customerId));
          return worker(event, context);
        },
        concurrency: 2,
        retryDelaySeconds: 1,
      }),
    );
    try {
      await eventually(async () => (await Promise.all(queues.map((queue) => queueDepth(aws.sqs, queue.queueUrl)))).every((depth) => depth === 0), 90_000, 250);
    } finally {
      await Promise.all(pollers.map((poller) => poller.stop()));
    }
    dlqDepth = (await Promise.all(queues.map((queue) => queueDepth(aws.sqs, queue.dlqUrl)))).reduce((sum, depth) => sum + depth, 0);
  }, 120_000);

  it('spreads them over every shard, none past its high-water mark, counted on the SHARD items as in API Gateway', async () => {
    // Prepare: the import and the worker ran (beforeAll).
    const { config, probe } = sharded;

    // Act
    const perShard = await Promise.all(
      config.shards.map(async (shard) => ({
        shard: shard.id,
        highWaterKeys: shard.highWaterKeys,
        keys: (await probe.keys(shard.id)).length,
        placedKeys: Number((await shardItem(config, shard.id))?.placedKeys ?? 0),
      })),
    );

    // Assess
    expect(importCounts).toEqual({ queued: ROWS, requeued: 0, skipped: 0, invalid: 0, failed: 0 });
    expect(dlqDepth).toBe(0);
    expect(perShard.map((row) => row.shard)).toEqual(['home', 'west', 'acct2']);
    expect(perShard.reduce((total, row) => total + row.keys, 0)).toBe(ROWS);
    for (const row of perShard) {
      // Each row names its shard, so a failure shows which.
      expect(row).toEqual({ shard: row.shard, highWaterKeys: HIGH_WATER, keys: row.keys, placedKeys: row.keys });
      expect(row.keys).toBeGreaterThan(0);
      expect(row.keys).toBeLessThanOrEqual(HIGH_WATER);
    }
  });

  it("sends each registration to its shard's own provisioning queue, so a worker batch holds one shard's", async () => {
    // Prepare: the import and the worker ran (beforeAll).
    const { probe } = sharded;

    // Act: the customers whose keys each shard holds.
    const keysOf = new Map(await Promise.all(probe.shards.map(async (shard) => [shard.id, await probe.keys(shard.id)] as const)));

    // Assess: each queue delivered exactly the customers of its shard.
    for (const shard of probe.shards) {
      const customers = (keysOf.get(shard.id) ?? []).map((key) => String(key.customerId)).sort();
      expect({ shard: shard.id, delivered: [...(deliveredBy.get(shard.id) ?? [])].sort() }).toEqual({ shard: shard.id, delivered: customers });
    }
  });

  it("puts each key in its tier's plan of its own shard and no other, with a value naming the shard, emailed with the shard's base URL", async () => {
    // Prepare
    const { config, probe, stack } = sharded;
    const shards = probe.shards;

    // Act: what API Gateway holds in each shard, the profiles, and the emails sent.
    const keysByShard = new Map(await Promise.all(shards.map(async (shard) => [shard.id, await probe.keys(shard.id, { values: true })] as const)));
    const plansByShard = new Map(await Promise.all(shards.map(async (shard) => [shard.id, await probe.tiersByKey(shard.id)] as const)));
    const profiles = new Map<string, Record<string, unknown>>();
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await aws.dynamo.send(
        new ScanCommand({ TableName: config.tableName, FilterExpression: 'sk = :profile', ExpressionAttributeValues: { ':profile': 'PROFILE' }, ExclusiveStartKey: startKey }),
      );
      for (const item of page.Items ?? []) profiles.set(String(item.customerId), item);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const emails = await sentEmails(stack.endpoint, (address) => address.endsWith(`@${domain}`));

    // Assess: one key per customer, in exactly its tier's plan in its shard and in no plan of
    // another shard; its value's prefix names the shard (only ids are printed on a failure).
    const owners = new Set<string>();
    for (const shard of shards) {
      const keys = keysByShard.get(shard.id) ?? [];
      const misplaced = keys
        .filter((key) => {
          const customerId = String(key.customerId);
          const inPlans = plansByShard.get(shard.id)?.get(key.id) ?? [];
          const elsewhere = shards.filter((other) => other.id !== shard.id && plansByShard.get(other.id)?.has(key.id));
          return (
            JSON.stringify(inPlans) !== JSON.stringify([tierOf.get(customerId)]) ||
            elsewhere.length > 0 ||
            key.enabled !== true ||
            profiles.get(customerId)?.shard !== shard.id
          );
        })
        .map((key) => key.id);
      const wrongPrefix = keys.filter((key) => shardOfKeyValue(String(key.value)) !== shard.id).map((key) => key.id);
      expect({ shard: shard.id, misplaced, wrongPrefix }).toEqual({ shard: shard.id, misplaced: [], wrongPrefix: [] });
      for (const key of keys) owners.add(String(key.customerId));
    }
    expect(owners.size).toBe(ROWS);

    // One email per customer, each naming the base URL of the customer's shard.
    expect(emails).toHaveLength(ROWS);
    const wrongUrl = emails.filter((email) => {
      const customerId = String(email.destinations.ToAddresses?.[0]).split('@')[0] ?? '';
      const shard = probe.shard(String(profiles.get(customerId)?.shard));
      return calledAt(email) !== shard.baseUrl;
    });
    expect(wrongUrl.map((email) => email.destinations.ToAddresses?.[0])).toEqual([]);
    expect(new Set(emails.map((email) => calledAt(email))).size).toBe(shards.length);
  });
});

describe("every operation on a customer acts in the customer's shard only", () => {
  let sharded: ShardedStack;
  let config: Config;
  let probe: ShardProbe;
  const customers: Record<string, Registered> = {};

  beforeAll(async () => {
    sharded = await shardedStack('ops');
    ({ config, probe } = sharded);
    const wanted: [name: string, shard: string, tier: string][] = [
      ['rotated', 'west', 'basic'],
      ['tiered', 'acct2', 'free'],
      ['revoked', 'west', 'free'],
      ['usageHome', 'home', 'free'],
      ['usageWest', 'west', 'pro'],
      ['usageAcct2', 'acct2', 'basic'],
      ['drifted', 'west', 'basic'],
      ['bystander', 'home', 'basic'],
    ];
    await Promise.all(
      wanted.map(async ([name, shard, tier]) => {
        customers[name] = await register(config, customerPlacedOn(config, shard, name.toLowerCase()), tier);
      }),
    );
    for (const [name, shard] of wanted) {
      if (customers[name]?.shard !== shard) throw new Error(`${name} was placed on ${customers[name]?.shard}, not ${shard}`);
    }
  }, 60_000);

  const the = (name: string): Registered => {
    const customer = customers[name];
    if (!customer) throw new Error(`no customer ${name}`);
    return customer;
  };

  it('rotation: the successor is made, planned and emailed in the shard; nothing changes elsewhere', async () => {
    // Prepare
    const customer = the('rotated');
    const before = await probe.snapshot();

    // Act
    const result = await rotateCustomerKeys(customer.customerId, { now: new Date(), graceDays: 7 }, createRotationDeps(config));

    // Assess
    const after = await probe.snapshot();
    expect(changedShards(before, after)).toEqual(['west']);
    const [rotation] = result.rotations;
    expect(rotation).toMatchObject({ outcome: 'rotated', oldKeyId: customer.keyId });
    const newKeyId = rotation?.outcome === 'rotated' ? rotation.newKeyId : '';
    expect(after.west?.[newKeyId]).toEqual({ enabled: true, tiers: ['basic'] });
    expect(after.west?.[customer.keyId]).toEqual({ enabled: true, tiers: ['basic'] });
    const successor = (await probe.keys('west', { values: true })).find((key) => key.id === newKeyId);
    expect(shardOfKeyValue(String(successor?.value))).toBe('west');
    const emails = await sentEmailsTo(sharded.stack.endpoint, customer.email);
    expect(emails.map(calledAt)).toEqual([probe.shard('west').baseUrl, probe.shard('west').baseUrl]);
    expect(await keysOf(config, customer.customerId)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ keyId: customer.keyId, state: 'RETIRING', shard: 'west' }),
        expect.objectContaining({ keyId: newKeyId, state: 'ACTIVE', shard: 'west', usagePlanId: probe.shard('west').plans.basic }),
      ]),
    );
    expect((await profileOf(config, customer.customerId))?.shard).toBe('west');
  });

  it("tier change: the key moves into the new tier's plan of its own shard; nothing changes elsewhere", async () => {
    // Prepare
    const customer = the('tiered');
    const before = await probe.snapshot();

    // Act
    const result = await changeTier(
      { customerId: customer.customerId, tier: 'pro', requestId: unique('req'), now: new Date() },
      createCustomerDeps(config),
    );

    // Assess
    const after = await probe.snapshot();
    expect(result).toMatchObject({ changed: true, from: 'free', to: 'pro' });
    expect(result.keys).toEqual([{ keyId: customer.keyId, usagePlanId: probe.shard('acct2').plans.pro }]);
    expect(changedShards(before, after)).toEqual(['acct2']);
    expect(after.acct2?.[customer.keyId]).toEqual({ enabled: true, tiers: ['pro'] });
  });

  it('revocation: every live key is disabled in the shard that holds it; nothing changes elsewhere', async () => {
    // Prepare: a rotation with grace leaves two live keys, both in west.
    const customer = the('revoked');
    const rotated = await rotateCustomerKeys(customer.customerId, { now: new Date(), graceDays: 7 }, createRotationDeps(config));
    const newKeyId = rotated.rotations[0]?.outcome === 'rotated' ? rotated.rotations[0].newKeyId : '';
    const before = await probe.snapshot();
    expect(before.west?.[newKeyId]?.enabled).toBe(true);

    // Act
    const result = await revokeCustomer({ customerId: customer.customerId, now: new Date() }, createCustomerDeps(config));

    // Assess
    const after = await probe.snapshot();
    expect([...result.disabledKeyIds].sort()).toEqual([customer.keyId, newKeyId].sort());
    expect(changedShards(before, after)).toEqual(['west']);
    expect(after.west?.[customer.keyId]?.enabled).toBe(false);
    expect(after.west?.[newKeyId]?.enabled).toBe(false);
  });

  it("usage: each customer's usage is asked of its own shard, whose plan the key is in", async () => {
    // Prepare: a recording view of the shards' gateways, to see which shard each call went to.
    const asked: string[] = [];
    const deps = createUsageDeps(config);
    const recording: UsageDeps = {
      ...deps,
      keys: {
        in: (shardId) => {
          asked.push(shardOf(config.shards, shardId).id);
          return deps.keys.in(shardId);
        },
      },
    };
    const range = { from: '2031-03-01', to: '2031-03-03' };

    for (const [name, shard] of [
      ['usageHome', 'home'],
      ['usageWest', 'west'],
      ['usageAcct2', 'acct2'],
    ] as const) {
      const customer = the(name);
      asked.length = 0;

      // Act
      const usage = await getCustomerUsage(customer.customerId, range, recording);

      // Assess: asked of the customer's shard alone, for the plan of its tier there. The emulator
      // answers GetUsage only for a plan of the account and Region asked (below): a call sent to
      // another shard would have failed.
      expect({ name, asked }).toEqual({ name, asked: [shard] });
      expect(usage.keys).toEqual([
        {
          keyId: customer.keyId,
          state: 'ACTIVE',
          usagePlanId: probe.shard(shard).plans[customer.tier],
          days: ['2031-03-01', '2031-03-02', '2031-03-03'].map((date) => ({ date, used: 0, remaining: null })),
        },
      ]);
    }
    await expect(
      probe.client('home').send(new GetUsageCommand({ usagePlanId: String(probe.shard('acct2').plans.basic), startDate: range.from, endDate: range.to })),
    ).rejects.toMatchObject({ name: 'NotFoundException' });

    // Through the HTTP route too.
    const response = await httpHandler(customerUsageRoutes(createUsageDeps(config)))(
      {
        ...apiEvent({ method: 'GET', resource: '/customers/{customerId}/usage', pathParameters: { customerId: the('usageWest').customerId } }),
        queryStringParameters: range,
      },
      lambdaContext(),
    );
    expect(response.statusCode).toBe(200);
    expect(parse(response).keys).toEqual([expect.objectContaining({ usagePlanId: probe.shard('west').plans.pro })]);
  });

  it('reconcile: an orphan in one shard and a plan drift in another are each repaired in their own shard; nothing else changes', async () => {
    // Prepare: a key named and tagged as keyplan's with no record, in acct2; a west key moved
    // from its tier's plan into another.
    const orphan = await probe.client('acct2').send(
      new CreateApiKeyCommand({
        name: `${config.keyNamePrefix}-${createHash('sha256').update(unique('orphan')).digest('hex').slice(0, 32)}`,
        enabled: true,
        tags: { 'keyplan:managed': 'true', 'keyplan:stage': STAGE },
      }),
    );
    const orphanId = String(orphan.id);
    const drifted = the('drifted');
    const west = probe.shard('west');
    await probe.client('west').send(new DeleteUsagePlanKeyCommand({ usagePlanId: west.plans.basic, keyId: drifted.keyId }));
    await probe.client('west').send(new CreateUsagePlanKeyCommand({ usagePlanId: west.plans.pro, keyId: drifted.keyId, keyType: 'API_KEY' }));
    const before = await probe.snapshot();
    expect(before.acct2?.[orphanId]).toEqual({ enabled: true, tiers: [] });
    expect(before.west?.[drifted.keyId]).toEqual({ enabled: true, tiers: ['pro'] });

    // Act: later than the safety age, so that every key is judged.
    const report = await reconcileKeys({ now: new Date(Date.now() + 3 * 3_600_000), dryRun: false }, createReconcileDeps(config));

    // Assess
    expect(report.actions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'delete-orphan', shard: 'acct2', keyId: orphanId, reason: 'no-record' }),
        expect.objectContaining({ kind: 'repair-plan', shard: 'west', keyId: drifted.keyId, fromPlans: [west.plans.pro], toPlan: west.plans.basic }),
      ]),
    );
    expect(report.actions).toHaveLength(2);
    expect(report).toMatchObject({ done: { 'delete-orphan': 1, 'repair-plan': 1 }, failures: 0, busy: 0 });
    const after = await probe.snapshot();
    expect(changedShards(before, after)).toEqual(['acct2', 'west']);
    const { [orphanId]: _deleted, ...acct2Rest } = before.acct2 ?? {};
    expect(after.acct2).toEqual(acct2Rest);
    expect(after.west).toEqual({ ...before.west, [drifted.keyId]: { enabled: true, tiers: ['basic'] } });
    // Each shard's inventory (as listed, before the repairs): its own managed keys counted, and
    // written to its own SHARD item.
    for (const shard of config.shards) {
      const inventory = report.shards.find((row) => row.shard === shard.id);
      expect({ shard: inventory?.shard, managedKeys: inventory?.managedKeys }).toEqual({
        shard: shard.id,
        managedKeys: Object.keys(before[shard.id] ?? {}).length,
      });
      expect({ shard: shard.id, inventoryKeys: (await shardItem(config, shard.id))?.inventoryKeys }).toEqual({
        shard: shard.id,
        inventoryKeys: inventory?.accountKeys,
      });
    }
  });
});

describe('a full shard', () => {
  it('takes no new customer: it lands on the next shard; with every shard full, registration fails with 503 no-shard-capacity', async () => {
    // Prepare: acct2 at its mark by keyplan's own count.
    const { config, probe } = await shardedStack('full');
    await setShardCount(config, 'acct2', 'placedKeys', HIGH_WATER);
    const customerId = customerPlacedOn(config, 'acct2', 'full');
    const next = placementOrder(config.shards, customerId)[1]?.id ?? '';

    // Act
    const placed = await register(config, customerId);

    // Assess
    expect(placed.shard).toBe(next);
    expect((await probe.keys(next)).map((key) => key.id)).toEqual([placed.keyId]);
    expect(await probe.keys('acct2')).toEqual([]);
    expect((await profileOf(config, customerId))?.shard).toBe(next);
    expect((await shardItem(config, 'acct2'))?.placedKeys).toBe(HIGH_WATER);
    expect((await shardItem(config, next))?.placedKeys).toBe(1);

    // Prepare: every shard full, home by the reconciler's inventory of the account.
    await setShardCount(config, 'home', 'inventoryKeys', HIGH_WATER);
    for (const shard of ['west', 'acct2']) await setShardCount(config, shard, 'placedKeys', HIGH_WATER);
    const refusedId = unique('refused');
    const request = { customerId: refusedId, email: `${refusedId}@example.com`, tier: 'free' };

    // Act
    const direct = await provisionKey({ registrationId: refusedId, request, now: new Date() }, createProvisioningDeps(config)).then(
      () => undefined,
      (error: unknown) => error,
    );
    const response = await httpHandler(registerRoutes(createEnqueueDeps(config)))(postRegistration(request), lambdaContext());

    // Assess: refused before anything was made or written.
    expect(direct).toBeInstanceOf(NoShardCapacityError);
    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toBe('300');
    expect(parse(response)).toMatchObject({ status: 503, title: 'No capacity for new customers' });
    expect((await aws.dynamo.send(new GetCommand({ TableName: config.tableName, Key: regKey(refusedId) }))).Item).toBeUndefined();
    const everywhere = Object.fromEntries(
      await Promise.all(probe.shards.map(async (shard) => [shard.id, (await probe.keys(shard.id)).map((key) => key.id)] as const)),
    );
    expect(everywhere).toEqual({ home: [], west: [], acct2: [], [next]: [placed.keyId] });
  });
});

describe('a queued registration the worker rejects', () => {
  it('gives back the place its claim counted on the shard', async () => {
    const { config } = await shardedStack('unclaimed');
    const table = new RegistrationTable({ client: aws.dynamo, tableName: config.tableName, retentionDays: 30 });
    const customerId = unique('unclaimed');
    const queued = existingRegistration({ registrationId: customerId, customerId, state: 'QUEUED', leaseExpiresAt: 0 });
    expect(await table.claim(queued, new Date(), { shardId: 'acct2', highWaterKeys: HIGH_WATER })).toMatchObject({ kind: 'claimed' });
    expect((await shardItem(config, 'acct2'))?.placedKeys).toBe(1);

    expect(await table.failUnclaimed(customerId, { reason: 'invalid-message', detail: 'x' }, new Date())).toBe(true);
    expect(await table.failUnclaimed(customerId, { reason: 'invalid-message', detail: 'x' }, new Date())).toBe(false);

    expect((await shardItem(config, 'acct2'))?.placedKeys).toBe(0);
    expect(await profileOf(config, customerId)).toMatchObject({ status: 'UNREGISTERED' });
  });
});

describe('draining a shard', () => {
  it('moves its customers to other shards with a new key there; old keys work through the grace (a tier change or revocation meanwhile acts in both shards), then are disabled in the old shard', async () => {
    // Prepare: three customers on west, one on each other shard.
    const { config, probe, stack } = await shardedStack('drain');
    const onWest = await Promise.all([0, 1, 2].map(() => register(config, customerPlacedOn(config, 'west', 'drain'), 'basic')));
    const others = await Promise.all(['home', 'acct2'].map((shard) => register(config, customerPlacedOn(config, shard, 'stay'), 'free')));
    const before = await probe.snapshot();
    const now = new Date();
    const retireAt = new Date(now.getTime() + 7 * DAY_MS);

    // Act
    const progress = await drainShard('west', { now, limit: 100 }, createDrainDeps(config));

    // Assess: every west customer moved, each to a shard with headroom, with a successor made,
    // planned and emailed there; its old key still works in west until the grace ends.
    expect(progress).toMatchObject({ shard: 'west', moved: 3, skipped: 0, busy: 0, failed: 0, moreLeft: false });
    expect((await shardItem(config, 'west'))?.state).toBe('draining');
    const after = await probe.snapshot();
    const moved: { customer: Registered; target: string; newKeyId: string }[] = [];
    for (const customer of onWest) {
      const profile = await profileOf(config, customer.customerId);
      const target = String(profile?.shard);
      expect(['home', 'acct2']).toContain(target);
      const keys = await keysOf(config, customer.customerId);
      const successor = keys.find((key) => key.state === 'ACTIVE');
      const newKeyId = String(successor?.keyId);
      expect(successor).toMatchObject({ shard: target, usagePlanId: probe.shard(target).plans.basic });
      expect(keys.find((key) => key.keyId === customer.keyId)).toMatchObject({
        state: 'RETIRING',
        shard: 'west',
        retireAt: retireAt.toISOString(),
        successorKeyId: newKeyId,
      });
      expect(profile?.keyShards).toEqual({ [customer.keyId]: 'west' });
      expect(after[target]?.[newKeyId]).toEqual({ enabled: true, tiers: ['basic'] });
      expect(after.west?.[customer.keyId]).toEqual({ enabled: true, tiers: ['basic'] });
      const value = (await probe.keys(target, { values: true })).find((key) => key.id === newKeyId)?.value;
      expect(shardOfKeyValue(String(value))).toBe(target);
      const emails = await sentEmailsTo(stack.endpoint, customer.email);
      expect(emails.map(calledAt)).toEqual([probe.shard('west').baseUrl, probe.shard(target).baseUrl]);
      moved.push({ customer, target, newKeyId });
    }
    expect(Object.values(progress.to).reduce((total, n) => total + n, 0)).toBe(3);
    // The customers of other shards were not touched.
    for (const customer of others) {
      expect(after[customer.shard]?.[customer.keyId]).toEqual(before[customer.shard]?.[customer.keyId]);
      expect(await sentEmailsTo(stack.endpoint, customer.email)).toHaveLength(1);
    }

    // Act: a new customer whose placement would start at west.
    const newcomer = await register(config, customerPlacedOn(config, 'west', 'newcomer'));

    // Assess: placed on another shard; the drain has nothing left to move.
    expect(newcomer.shard).not.toBe('west');
    expect((await probe.keys('west')).map((key) => key.id).sort()).toEqual(onWest.map((customer) => customer.keyId).sort());
    expect(await drainShard('west', { now, limit: 100 }, createDrainDeps(config))).toMatchObject({ moved: 0, moreLeft: false });

    // Act: a tier change during the grace period moves each key in its own shard.
    const [first, second, third] = moved as [(typeof moved)[0], (typeof moved)[0], (typeof moved)[0]];
    await changeTier({ customerId: first.customer.customerId, tier: 'pro', requestId: unique('req'), now: new Date() }, createCustomerDeps(config));

    // Assess
    const tiered = await probe.snapshot();
    expect(tiered.west?.[first.customer.keyId]?.tiers).toEqual(['pro']);
    expect(tiered[first.target]?.[first.newKeyId]?.tiers).toEqual(['pro']);

    // Act: a revocation during the grace period disables each key in its own shard.
    const revoked = await revokeCustomer({ customerId: second.customer.customerId, now: new Date() }, createCustomerDeps(config));

    // Assess
    expect([...revoked.disabledKeyIds].sort()).toEqual([second.customer.keyId, second.newKeyId].sort());
    expect(await probe.key('west', second.customer.keyId)).toEqual({ enabled: false });
    expect(await probe.key(second.target, second.newKeyId)).toEqual({ enabled: false });

    // Act: the retirement job, just before and just after the grace period.
    const retiring = [first, third];
    const early = await retireDueKeys(new Date(retireAt.getTime() - 60_000), 100, createRotationDeps(config));
    const stillOn = await Promise.all(retiring.map(({ customer }) => probe.key('west', customer.keyId)));
    const late = await retireDueKeys(new Date(retireAt.getTime() + 60_000), 100, createRotationDeps(config));

    // Assess: disabled in west, where they are; every customer but the revoked one keeps exactly
    // one ACTIVE key, enabled in the shard its profile names.
    expect(early.disabled).toBe(0);
    expect(stillOn).toEqual([{ enabled: true }, { enabled: true }]);
    expect(late).toMatchObject({ disabled: 2, failed: 0 });
    for (const { customer, target, newKeyId } of retiring) {
      expect(await probe.key('west', customer.keyId)).toEqual({ enabled: false });
      expect(await probe.key(target, newKeyId)).toEqual({ enabled: true });
    }
    for (const customer of [...onWest, ...others, newcomer].filter((c) => c !== second.customer)) {
      const active = (await keysOf(config, customer.customerId)).filter((key) => key.state === 'ACTIVE');
      const shard = String((await profileOf(config, customer.customerId))?.shard);
      expect({ customerId: customer.customerId, active: active.map((key) => key.shard) }).toEqual({
        customerId: customer.customerId,
        active: [shard],
      });
      expect(await probe.key(shard, String(active[0]?.keyId))).toEqual({ enabled: true });
    }
  });
});

describe('a shard whose role cannot be assumed', () => {
  it("fails that shard's work with ShardUnavailableError (503) and leaves the other shards working", async () => {
    // Prepare: four shards (acct2 and acct3 in other accounts, through their roles), one customer
    // on each; then acct2's external id no longer matches its role's trust policy.
    const { stack, env, config: good, probe } = await shardedStack('role', 4);
    const before = await Promise.all(['home', 'west', 'acct2', 'acct3'].map((shard) => register(good, customerPlacedOn(good, shard, 'role'))));
    const acct2 = probe.shard('acct2');
    const acct3 = probe.shard('acct3');
    const trust = await startStsTrustPolicy({
      target: stack.endpoint,
      externalIds: { [String(acct2.roleArn)]: String(acct2.externalId), [String(acct3.roleArn)]: String(acct3.externalId) },
    });
    const shards = (JSON.parse(env.SHARDS ?? '[]') as { id: string; externalId?: string }[]).map((shard) =>
      shard.id === 'acct2' ? { ...shard, externalId: 'not-the-agreed-id' } : shard,
    );
    const config = loadConfig({ ...env, SHARDS: JSON.stringify(shards) });
    const stsBefore = process.env.AWS_ENDPOINT_URL_STS;
    process.env.AWS_ENDPOINT_URL_STS = trust.endpoint;
    try {
      const range = { from: '2031-03-01', to: '2031-03-01' };

      // Act: each customer's usage, from fresh deps (their clients assume the roles anew).
      const usage = await Promise.allSettled(before.map((customer) => getCustomerUsage(customer.customerId, range, createUsageDeps(config))));
      const usageRoute = await httpHandler(customerUsageRoutes(createUsageDeps(config)))(
        {
          ...apiEvent({ method: 'GET', resource: '/customers/{customerId}/usage', pathParameters: { customerId: before[2]!.customerId } }),
          queryStringParameters: range,
        },
        lambdaContext(),
      );

      // Assess: acct2's customer fails with the shard named and STS's refusal as the cause; the
      // others (acct3 through its own role) are served.
      expect(usage.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      const failure = (usage[2] as PromiseRejectedResult).reason as ShardUnavailableError;
      expect(failure).toBeInstanceOf(ShardUnavailableError);
      expect(failure.shardId).toBe('acct2');
      expect(failure.message).toBe('shard "acct2" is unavailable: its role could not be assumed');
      expect(failure.cause).toMatchObject({ name: 'AccessDenied' });
      expect(usageRoute.statusCode).toBe(503);
      expect(usageRoute.headers?.['retry-after']).toBe('60');
      expect(parse(usageRoute)).toMatchObject({ status: 503, title: 'Shard unavailable' });
      expect(trust.refused[String(acct2.roleArn)]).toBeGreaterThan(0);
      expect(trust.refused[String(acct3.roleArn)]).toBeUndefined();
      expect(trust.allowed[String(acct3.roleArn)]).toBeGreaterThan(0);

      // Act: new registrations, one whose placement starts at each shard, through the HTTP route.
      const registerRoute = httpHandler(registerRoutes(createEnqueueDeps(config)));
      const newcomers = ['home', 'west', 'acct2', 'acct3'].map((shard) => ({ shard, customerId: customerPlacedOn(config, shard, 'late') }));
      const responses = await Promise.all(
        newcomers.map(({ customerId }) =>
          registerRoute(postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'free' }), lambdaContext()),
        ),
      );

      // Assess: acct2's newcomer is refused with 503 shard-unavailable and no key made there; the
      // others are registered in their shards.
      expect(responses.map((response) => response.statusCode)).toEqual([201, 201, 503, 201]);
      expect(parse(responses[2]!)).toMatchObject({ status: 503, title: 'Shard unavailable' });
      for (const { shard, customerId } of newcomers.filter((newcomer) => newcomer.shard !== 'acct2')) {
        const keys = (await probe.keys(shard)).filter((key) => key.customerId === customerId);
        expect({ customerId, shard: (await profileOf(config, customerId))?.shard, keys: keys.length }).toEqual({ customerId, shard, keys: 1 });
      }
      expect((await probe.keys('acct2')).map((key) => key.customerId)).toEqual([before[2]!.customerId]);

      // Act: the scheduled rotation over every shard's due keys.
      const rotation = await rotateDueKeys(new Date(Date.now() + 91 * DAY_MS), 50, createRotationDeps(config));

      // Assess: acct2's key failed and stays due; every other shard's keys were rotated.
      expect(rotation).toMatchObject({ rotated: 6, failed: 1 });
    } finally {
      if (stsBefore === undefined) delete process.env.AWS_ENDPOINT_URL_STS;
      else process.env.AWS_ENDPOINT_URL_STS = stsBefore;
      await trust.stop();
    }
  });
});
