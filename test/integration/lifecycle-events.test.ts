import {
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyResult, SQSBatchResponse } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { createAwsClients } from '../../shared/aws/clients';
import { DAY_MS } from '../../shared/aws/table-keys';
import { type Config, loadConfig } from '../../shared/config';
import type { LifecycleEventType } from '../../shared/core/events';
import type { CustomerKey } from '../../shared/core/model';
import { keyNameFor } from '../../shared/core/registration';
import { changeTier } from '../../shared/customers/change-tier';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import { httpHandler } from '../../shared/http/handler';
import type { ProvisioningMessage } from '../../shared/provisioning/ports';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';
import { rotateKey } from '../../shared/rotation/rotate-key';
import { retireDueKeys, rotateCustomerKeys, rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import { finishInterruptedOperations } from '../../shared/sweep/finish-interrupted';
import {
  createCustomerDeps,
  createEnqueueDeps,
  createProvisioningDeps,
  createReconcileDeps,
  createResumeDeps,
  createRotationDeps,
  createWorkerDeps,
} from '../../shared/wiring/compose';
import { changeTierRoutes } from '../../functions/change-tier/routes';
import { tierChangeBatchHandler } from '../../functions/change-tier-events/batch';
import { provisioningBatchHandler } from '../../functions/provision-worker/batch';
import { registerRoutes } from '../../functions/register/routes';
import { revokeCustomerRoutes } from '../../functions/revoke-customer/routes';
import { rotateCustomerRoutes } from '../../functions/rotate-customer/routes';
import { apiEvent, lambdaContext, postRegistration } from '../support/api-events';
import { crashAfter, failAttempts, failWhile, itemsOfCustomer, plansOfKey, SimulatedCrash } from '../support/emulator-probe';
import { type EventItem, eventItemsOf, schemaViolations, typesOf } from '../support/lifecycle-events';
import { sqsEvent, sqsRecord } from '../support/sqs-events';

// DESIGN §9: every committed change of a customer or a key writes its lifecycle events in the same
// transaction (the outbox): the customer's EVENT#<sequence> items, read here straight from the
// table. Each test checks a customer's whole trail: exactly the types expected, in order, numbered
// 1..n, by the operation that made the change, with the details a consumer needs and never a key
// value (compared with the real values, read from the emulator), each fitting its JSON Schema
// (docs/events/<type>.schema.json) as the publisher will send it.

const shared = inject('localStack');
const aws = createAwsClients();
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;
const parse = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;
const fingerprintOf = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 8);
type Clients = ReturnType<typeof createAwsClients>;

const awsError = (name: string, status: number, message = name) =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
const planRefuses = () => awsError('NotFoundException', 404, 'Invalid Usage Plan ID specified');
const dynamoDown = () => awsError('InternalServerError', 500, 'Internal server error');

/** The shared stack's table and config: for operations that act on one customer only. */
let stack: LocalStack;
let config: Config;

beforeAll(() => {
  stack = shared;
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig({ ...functionEnvironment(stack), MANAGEMENT_CALLS_PER_SECOND: '500' });
});

/**
 * A table (and key-name prefix) of the test's own, for the jobs that act on everything due in a
 * table (rotation, retirement, the sweep) or every key of a prefix (the reconciler): the keys of
 * tests running beside it are neither seen nor touched, nor theirs here.
 */
async function ownStack(label: string, env: Record<string, string> = {}): Promise<{ stack: LocalStack; config: Config }> {
  const own = await bootstrapLocalStack({ endpoint: shared.endpoint, tableName: unique(`keyplan-${label}`) });
  return {
    stack: own,
    config: loadConfig({
      ...functionEnvironment(own),
      MANAGEMENT_CALLS_PER_SECOND: '500',
      KEY_NAME_PREFIX: `ev${process.pid}x${Date.now().toString(36)}x${++runId}`,
      ...env,
    }),
  };
}

const registerVia = (cfg: Config, faults?: (clients: Clients) => void) => {
  const clients = createAwsClients();
  faults?.(clients);
  return httpHandler(registerRoutes(createEnqueueDeps(cfg, clients)));
};

async function register(cfg: Config, customerId: string, tier: string, extra: { idempotencyKey?: string; reactivate?: boolean } = {}) {
  const response = await registerVia(cfg)(
    postRegistration(
      { customerId, email: `${customerId}@example.com`, tier, ...(extra.reactivate ? { reactivate: true } : {}) },
      extra.idempotencyKey ? { 'Idempotency-Key': extra.idempotencyKey } : {},
    ),
    lambdaContext(),
  );
  expect(response.statusCode).toBe(201);
  return String(parse(response).keyId);
}

const registrationOf = async (cfg: Config, registrationId: string) => {
  const registration = await createProvisioningDeps(cfg).store.getRegistration(registrationId);
  if (!registration) throw new Error(`no registration ${registrationId}`);
  return registration;
};

const profileOf = async (cfg: Config, customerId: string) =>
  (await aws.dynamo.send(new GetCommand({ TableName: cfg.tableName, Key: { pk: `CUSTOMER#${customerId}`, sk: 'PROFILE' } }))).Item;

const keyItemOf = async (cfg: Config, customerId: string, keyId: string) =>
  (await itemsOfCustomer(aws.dynamo, cfg.tableName, customerId)).find((item) => item.sk === `KEY#${keyId}`);

const keyOf = async (cfg: Config, customerId: string, keyId: string): Promise<CustomerKey> => {
  const key = (await createRotationDeps(cfg).keyStore.keysOf(customerId)).find((candidate) => candidate.keyId === keyId);
  if (!key) throw new Error(`no key ${keyId}`);
  return key;
};

/**
 * The values of every key of the registration (its first key and the successors named after it),
 * by key id, as API Gateway holds them: what must never reach an event. Read while the keys exist.
 */
async function keyValues(cfg: Config, registrationId: string): Promise<Map<string, string>> {
  const name = keyNameFor(cfg.keyNamePrefix, registrationId);
  const page = await aws.apiGateway.send(new GetApiKeysCommand({ nameQuery: name, includeValues: true, limit: 500 }));
  return new Map(
    (page.items ?? []).filter((key) => key.name?.startsWith(name)).map((key) => [String(key.id), String(key.value)] as const),
  );
}

const valueOf = (values: Map<string, string>, keyId: string) => {
  const value = values.get(keyId);
  if (!value) throw new Error(`no value read for key ${keyId}`);
  return value;
};

interface Expected {
  type: LifecycleEventType;
  /** The operation's attempt id, or its lease owner's shape (`rotate-<uuid>`). */
  correlationId: string | RegExp;
  /** The event's own detail, exactly. */
  detail: Record<string, unknown>;
  /** The operation's `now`, when the test controls it. */
  time?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const lease = (operation: string) => new RegExp(`^${operation}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`);

/**
 * Reads the customer's trail and checks it whole: exactly `expected`, in order, numbered 1..n with
 * the sort key to match, the profile's count at n, ids unique, each fitting its schema, and none
 * holding any of `secrets` (the key values). Answers the items for further checks.
 */
async function expectTrail(cfg: Config, customerId: string, expected: Expected[], secrets: Iterable<string>): Promise<EventItem[]> {
  const events = await eventItemsOf(aws.dynamo, cfg.tableName, customerId);
  expect(typesOf(events)).toEqual(expected.map((want) => want.type));
  expect(events.map((item) => item.sequence)).toEqual(expected.map((_, index) => index + 1));
  events.forEach((item, index) => {
    const want = expected[index]!;
    expect(item.sk).toBe(`EVENT#${String(index + 1).padStart(12, '0')}`);
    expect(item.customerId).toBe(customerId);
    expect(item.eventId).toMatch(UUID);
    if (typeof want.correlationId === 'string') expect(item.correlationId).toBe(want.correlationId);
    else expect(item.correlationId).toMatch(want.correlationId);
    expect(item.detail).toEqual(want.detail);
    if (want.time) expect(item.time).toBe(want.time);
    // Kept as the audit trail until its TTL, well after the change.
    expect(item.expiresAt).toBeGreaterThan(Date.parse(item.time) / 1000 + 300 * 86_400);
  });
  expect(events.flatMap(schemaViolations)).toEqual([]);
  expect(new Set(events.map((item) => item.eventId)).size).toBe(events.length);
  expect(Number((await profileOf(cfg, customerId))?.eventSeq ?? 0)).toBe(events.length);
  const text = JSON.stringify(events);
  for (const secret of secrets) expect(text).not.toContain(secret);
  return events;
}

describe('a registration', () => {
  it('synchronous (POST): KeyProvisioned then KeyEmailed, by the attempt that recorded them; a replay writes nothing', async () => {
    const customerId = unique('ev-sync');
    const body = { customerId, email: `${customerId}@example.com`, tier: 'pro' };

    const created = await registerVia(config)(postRegistration(body), lambdaContext());

    expect(created.statusCode).toBe(201);
    const keyId = String(parse(created).keyId);
    const { attemptId } = await registrationOf(config, customerId);
    const values = await keyValues(config, customerId);
    const fingerprint = fingerprintOf(valueOf(values, keyId));
    const trail = await expectTrail(
      config,
      customerId,
      [
        {
          type: 'KeyProvisioned',
          correlationId: attemptId,
          detail: {
            keyId,
            registrationId: customerId,
            tier: 'pro',
            usagePlanId: stack.usagePlans.pro,
            shard: 'home',
            fingerprint,
            rotateAt: (await keyItemOf(config, customerId, keyId))?.rotateAt,
          },
        },
        { type: 'KeyEmailed', correlationId: attemptId, detail: { keyId, fingerprint, reason: 'registration' } },
      ],
      values.values(),
    );
    expect(trail[0]?.time).toBe(trail[1]?.time);

    const replay = await registerVia(config)(postRegistration(body), lambdaContext());

    expect(replay.statusCode).toBe(200);
    expect(await eventItemsOf(aws.dynamo, config.tableName, customerId)).toEqual(trail);
  });

  it('asynchronous (Prefer: respond-async): nothing while queued; the worker’s attempt writes both; a redelivery nothing', async () => {
    const customerId = unique('ev-async');
    const sent: ProvisioningMessage[] = [];
    const enqueue = { ...createEnqueueDeps(config), queue: { send: async (message: ProvisioningMessage) => void sent.push(message) } };

    const accepted = await httpHandler(registerRoutes(enqueue))(
      postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'basic' }, { Prefer: 'respond-async' }),
      lambdaContext(),
    );

    expect(accepted.statusCode).toBe(202);
    expect(sent).toHaveLength(1);
    // Queued: the customer is reserved, but nothing about a key has happened yet.
    expect(await eventItemsOf(aws.dynamo, config.tableName, customerId)).toEqual([]);
    const queued = await registrationOf(config, customerId);

    const worker = provisioningBatchHandler(createWorkerDeps(config));
    const delivered = (await worker(sqsEvent([sqsRecord(sent[0])]), lambdaContext())) as SQSBatchResponse;

    expect(delivered.batchItemFailures).toEqual([]);
    const done = await registrationOf(config, customerId);
    expect(done).toMatchObject({ state: 'ACTIVE' });
    expect(done.attemptId).not.toBe(queued.attemptId);
    const keyId = String(done.keyId);
    const values = await keyValues(config, customerId);
    const fingerprint = fingerprintOf(valueOf(values, keyId));
    const trail = await expectTrail(
      config,
      customerId,
      [
        {
          type: 'KeyProvisioned',
          correlationId: done.attemptId,
          detail: {
            keyId,
            registrationId: customerId,
            tier: 'basic',
            usagePlanId: stack.usagePlans.basic,
            shard: 'home',
            fingerprint,
            rotateAt: (await keyItemOf(config, customerId, keyId))?.rotateAt,
          },
        },
        { type: 'KeyEmailed', correlationId: done.attemptId, detail: { keyId, fingerprint, reason: 'registration' } },
      ],
      values.values(),
    );

    const redelivered = (await worker(sqsEvent([sqsRecord(sent[0])]), lambdaContext())) as SQSBatchResponse;

    expect(redelivered.batchItemFailures).toEqual([]);
    expect(await eventItemsOf(aws.dynamo, config.tableName, customerId)).toEqual(trail);
  });

  it('refused by the plan: RegistrationFailed alone; the customer’s next registration numbers on from 2', async () => {
    const customerId = unique('ev-refused');
    const first = unique('first');
    const refused = await registerVia(config, (clients) => failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', planRefuses))(
      postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'free' }, { 'Idempotency-Key': first }),
      lambdaContext(),
    );

    expect(refused.statusCode).toBe(502);
    const failed = await registrationOf(config, first);
    expect(failed).toMatchObject({ state: 'FAILED', failureReason: 'association-rejected' });
    const failure: Expected = {
      type: 'RegistrationFailed',
      correlationId: failed.attemptId,
      detail: { registrationId: first, tier: 'free', reason: 'association-rejected', shard: 'home' },
    };
    await expectTrail(config, customerId, [failure], []);
    expect(await profileOf(config, customerId)).toMatchObject({ status: 'UNREGISTERED' });

    const second = unique('second');
    const keyId = await register(config, customerId, 'free', { idempotencyKey: second });

    const { attemptId } = await registrationOf(config, second);
    expect(attemptId).not.toBe(failed.attemptId);
    const values = await keyValues(config, second);
    const fingerprint = fingerprintOf(valueOf(values, keyId));
    await expectTrail(
      config,
      customerId,
      [
        failure,
        {
          type: 'KeyProvisioned',
          correlationId: attemptId,
          detail: {
            keyId,
            registrationId: second,
            tier: 'free',
            usagePlanId: stack.usagePlans.free,
            shard: 'home',
            fingerprint,
            rotateAt: (await keyItemOf(config, customerId, keyId))?.rotateAt,
          },
        },
        { type: 'KeyEmailed', correlationId: attemptId, detail: { keyId, fingerprint, reason: 'registration' } },
      ],
      values.values(),
    );
  });
});

/** The first two events of a customer registered with one key, as every trail below starts. */
async function registered(cfg: Config, customerId: string, keyId: string, tier: string, registrationId = customerId): Promise<Expected[]> {
  const { attemptId } = await registrationOf(cfg, registrationId);
  const key = await keyItemOf(cfg, customerId, keyId);
  const fingerprint = String(key?.fingerprint);
  return [
    {
      type: 'KeyProvisioned',
      correlationId: attemptId,
      detail: {
        keyId,
        registrationId,
        tier,
        usagePlanId: cfg.tierMap[tier],
        shard: 'home',
        fingerprint,
        rotateAt: key?.rotateAt,
      },
    },
    { type: 'KeyEmailed', correlationId: attemptId, detail: { keyId, fingerprint, reason: 'registration' } },
  ];
}

/**
 * The two events of a rotation of `oldKeyId` as its records say it went (the successor and the
 * retirement time on the old key's item): KeyRotated and KeyEmailed, by one rotation.
 */
async function rotationEvents(cfg: Config, customerId: string, oldKeyId: string, tier: string, graceDays: number, values: Map<string, string>): Promise<Expected[]> {
  const old = await keyItemOf(cfg, customerId, oldKeyId);
  const newKeyId = String(old?.successorKeyId);
  const fingerprint = fingerprintOf(valueOf(values, newKeyId));
  expect((await keyItemOf(cfg, customerId, newKeyId))?.fingerprint).toBe(fingerprint);
  return [
    {
      type: 'KeyRotated',
      correlationId: lease('rotate'),
      detail: {
        oldKeyId,
        newKeyId,
        retireAt: old?.retireAt,
        graceDays,
        tier,
        usagePlanId: cfg.tierMap[tier],
        shard: 'home',
        fromShard: 'home',
        fingerprint,
      },
    },
    { type: 'KeyEmailed', correlationId: lease('rotate'), detail: { keyId: newKeyId, fingerprint, reason: 'rotation' } },
  ];
}

describe('a rotation', () => {
  it('on demand with no grace: KeyRotated and KeyEmailed by the rotation, then KeyDisabled by the retirement', async () => {
    const customerId = unique('ev-leak');
    const oldKeyId = await register(config, customerId, 'basic');
    const start = await registered(config, customerId, oldKeyId, 'basic');

    const response = await httpHandler(rotateCustomerRoutes(createRotationDeps(config)))(
      apiEvent({
        method: 'POST',
        resource: '/customers/{customerId}/rotations',
        pathParameters: { customerId },
        body: JSON.stringify({ graceDays: 0 }),
      }),
      lambdaContext(),
    );

    expect(response.statusCode).toBe(200);
    const [rotation] = (parse(response) as { rotations: { newKeyId: string; retireAt: string }[] }).rotations;
    const newKeyId = String(rotation?.newKeyId);
    const values = await keyValues(config, customerId);
    expect([...values.keys()].sort()).toEqual([oldKeyId, newKeyId].sort());
    const fingerprint = fingerprintOf(valueOf(values, newKeyId));
    const trail = await expectTrail(
      config,
      customerId,
      [
        ...start,
        {
          type: 'KeyRotated',
          correlationId: lease('rotate'),
          detail: {
            oldKeyId,
            newKeyId,
            retireAt: rotation?.retireAt,
            graceDays: 0,
            tier: 'basic',
            usagePlanId: stack.usagePlans.basic,
            shard: 'home',
            fromShard: 'home',
            fingerprint,
          },
        },
        { type: 'KeyEmailed', correlationId: lease('rotate'), detail: { keyId: newKeyId, fingerprint, reason: 'rotation' } },
        { type: 'KeyDisabled', correlationId: lease('retire'), detail: { keyId: oldKeyId, reason: 'retired', shard: 'home' } },
      ],
      values.values(),
    );
    // One change, one correlation id; the retirement is a change of its own.
    expect(trail[2]?.correlationId).toBe(trail[3]?.correlationId);
    expect(trail[4]?.correlationId).not.toBe(trail[2]?.correlationId);
  });

  it('scheduled: KeyRotated with the grace; the reminder writes nothing; KeyDisabled after the grace, KeyDeleted after the retention', async () => {
    const own = await ownStack('ev-rotation', { GRACE_DAYS: '7', REMINDER_DAYS: '2', KEY_RETENTION_DAYS: '30' });
    const T0 = new Date('2031-01-01T00:00:00.000Z');
    const at = (days: number) => new Date(T0.getTime() + days * DAY_MS + 60_000);
    const customerId = unique('ev-due');
    const { registration } = await provisionKey(
      { registrationId: customerId, request: { customerId, email: `${customerId}@example.com`, tier: 'pro' }, now: T0 },
      createProvisioningDeps(own.config),
    );
    const oldKeyId = String(registration.keyId);
    const start = await registered(own.config, customerId, oldKeyId, 'pro');

    expect(await rotateDueKeys(at(90), 50, createRotationDeps(own.config))).toMatchObject({ rotated: 1, failed: 0 });
    const values = await keyValues(own.config, customerId);
    const newKeyId = [...values.keys()].find((keyId) => keyId !== oldKeyId) ?? '';
    const retireAt = new Date(at(90).getTime() + 7 * DAY_MS);
    expect(await retireDueKeys(new Date(retireAt.getTime() - 2 * DAY_MS), 100, createRotationDeps(own.config))).toMatchObject({ reminded: 1 });
    expect(await eventItemsOf(aws.dynamo, own.config.tableName, customerId)).toHaveLength(4);
    expect(await retireDueKeys(retireAt, 100, createRotationDeps(own.config))).toMatchObject({ disabled: 1 });
    const deleteAt = new Date(retireAt.getTime() + 30 * DAY_MS);
    expect(await retireDueKeys(deleteAt, 100, createRotationDeps(own.config))).toMatchObject({ deleted: 1 });

    const fingerprint = fingerprintOf(valueOf(values, newKeyId));
    await expectTrail(
      own.config,
      customerId,
      [
        { ...start[0]!, time: T0.toISOString() },
        { ...start[1]!, time: T0.toISOString() },
        {
          type: 'KeyRotated',
          correlationId: lease('rotate'),
          time: at(90).toISOString(),
          detail: {
            oldKeyId,
            newKeyId,
            retireAt: retireAt.toISOString(),
            graceDays: 7,
            tier: 'pro',
            usagePlanId: own.stack.usagePlans.pro,
            shard: 'home',
            fromShard: 'home',
            fingerprint,
          },
        },
        { type: 'KeyEmailed', correlationId: lease('rotate'), time: at(90).toISOString(), detail: { keyId: newKeyId, fingerprint, reason: 'rotation' } },
        {
          type: 'KeyDisabled',
          correlationId: lease('retire'),
          time: retireAt.toISOString(),
          detail: { keyId: oldKeyId, reason: 'retired', shard: 'home' },
        },
        { type: 'KeyDeleted', correlationId: lease('retire'), time: deleteAt.toISOString(), detail: { keyId: oldKeyId, shard: 'home' } },
      ],
      values.values(),
    );
    expect(await keyValues(own.config, customerId)).toEqual(new Map([[newKeyId, valueOf(values, newKeyId)]]));
  });
});

describe('a tier change', () => {
  const putTier = (customerId: string, tier: string, faults?: (clients: Clients) => void) => {
    const clients = createAwsClients();
    faults?.(clients);
    return httpHandler(changeTierRoutes(createCustomerDeps(config, clients)))(
      apiEvent({ method: 'PUT', resource: '/customers/{customerId}/tier', pathParameters: { customerId }, body: JSON.stringify({ tier }) }),
      lambdaContext(),
    );
  };
  const planChanged = (id: string, customerId: string, tier: string, occurredAt: string) =>
    sqsRecord({ id, 'detail-type': 'PlanChanged', detail: { customerId, tier, occurredAt } });

  it('TierChanged for each move; a move put back, a billing event that changes nothing and an older one write none', async () => {
    const customerId = unique('ev-tier');
    const keyId = await register(config, customerId, 'free');
    const start = await registered(config, customerId, keyId, 'free');

    expect((await putTier(customerId, 'pro')).statusCode).toBe(200);
    const restored = await putTier(customerId, 'basic', (clients) =>
      failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', () => awsError('BadRequestException', 400, 'refused'), 1),
    );
    expect(restored.statusCode).toBe(502);
    expect(await plansOfKey(aws.apiGateway, keyId)).toEqual([stack.usagePlans.pro]);
    const billing = tierChangeBatchHandler(createCustomerDeps(config));
    const movedBy = unique('billing');
    const same = planChanged(unique('billing'), customerId, 'pro', '2026-11-30T10:00:00.000Z');
    const moved = planChanged(movedBy, customerId, 'basic', '2026-11-30T11:00:00.000Z');
    const older = planChanged(unique('billing'), customerId, 'free', '2026-11-30T10:30:00.000Z');
    for (const record of [same, moved, older]) {
      expect(((await billing(sqsEvent([record]), lambdaContext())) as SQSBatchResponse).batchItemFailures).toEqual([]);
    }

    expect(await profileOf(config, customerId)).toMatchObject({ tier: 'basic', tierEventAt: '2026-11-30T11:00:00.000Z' });
    const trail = await expectTrail(
      config,
      customerId,
      [
        ...start,
        { type: 'TierChanged', correlationId: lease('change-tier'), detail: { from: 'free', to: 'pro', cause: 'request-1', keyIds: [keyId] } },
        {
          type: 'TierChanged',
          correlationId: lease('change-tier'),
          detail: { from: 'pro', to: 'basic', cause: movedBy, eventAt: '2026-11-30T11:00:00.000Z', keyIds: [keyId] },
        },
      ],
      (await keyValues(config, customerId)).values(),
    );
    expect(trail[2]?.correlationId).not.toBe(trail[3]?.correlationId);
  });

  it('a move that could not be put back: no TierChanged; the sweep’s repair writes KeyRepaired', async () => {
    const own = await ownStack('ev-sweep');
    const customerId = unique('ev-stuck');
    const keyId = await register(own.config, customerId, 'free');
    const start = await registered(own.config, customerId, keyId, 'free');
    const clients = createAwsClients();
    failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', () => awsError('BadRequestException', 400, 'refused'));

    await expect(
      changeTier({ customerId, tier: 'pro', requestId: 'stuck-1', now: new Date() }, createCustomerDeps(own.config, clients)),
    ).rejects.toMatchObject({ name: 'TierChangeFailedError' });
    await expectTrail(own.config, customerId, start, []);

    expect(await finishInterruptedOperations(new Date(), 10, createResumeDeps(own.config))).toMatchObject({ finished: 1 });

    expect(await plansOfKey(aws.apiGateway, keyId)).toEqual([own.stack.usagePlans.free]);
    await expectTrail(
      own.config,
      customerId,
      [
        ...start,
        // Taken over with the interrupted operation's intent: the sweep's owner is a tier change's.
        {
          type: 'KeyRepaired',
          correlationId: lease('change-tier'),
          detail: { keyId, usagePlanId: own.stack.usagePlans.free, tier: 'free', cause: 'change-tier' },
        },
      ],
      (await keyValues(own.config, customerId)).values(),
    );
  });
});

describe('a revocation and a re-activation', () => {
  it('CustomerRevoked and a KeyDisabled per live key in one change; re-activation: KeyProvisioned, CustomerReactivated, KeyEmailed', async () => {
    const customerId = unique('ev-revoke');
    const firstKeyId = await register(config, customerId, 'free');
    const start = await registered(config, customerId, firstKeyId, 'free');
    // Two live keys: the successor ACTIVE, the old one RETIRING through its grace.
    const { rotations } = await rotateCustomerKeys(customerId, { now: new Date(), graceDays: 7 }, createRotationDeps(config));
    const rotated = rotations[0]?.outcome === 'rotated' ? rotations[0] : undefined;
    const secondKeyId = String(rotated?.newKeyId);
    const before = await keyValues(config, customerId);

    const revoke = () =>
      httpHandler(revokeCustomerRoutes(createCustomerDeps(config)))(
        apiEvent({ method: 'DELETE', resource: '/customers/{customerId}/keys', pathParameters: { customerId } }),
        lambdaContext(),
      );

    const response = await revoke();

    expect(response.statusCode).toBe(200);
    const revokedTrail = await eventItemsOf(aws.dynamo, config.tableName, customerId);
    // Both keys, in the order the revocation disabled them (the customer's list has no order).
    const disabled = (revokedTrail[4]?.detail.keyIds ?? []) as string[];
    expect([...disabled].sort()).toEqual([firstKeyId, secondKeyId].sort());
    const secondFingerprint = fingerprintOf(valueOf(before, secondKeyId));
    const revocation: Expected[] = [
      ...start,
      {
        type: 'KeyRotated',
        correlationId: lease('rotate'),
        detail: {
          oldKeyId: firstKeyId,
          newKeyId: secondKeyId,
          retireAt: rotated?.retireAt,
          graceDays: 7,
          tier: 'free',
          usagePlanId: stack.usagePlans.free,
          shard: 'home',
          fromShard: 'home',
          fingerprint: secondFingerprint,
        },
      },
      { type: 'KeyEmailed', correlationId: lease('rotate'), detail: { keyId: secondKeyId, fingerprint: secondFingerprint, reason: 'rotation' } },
      { type: 'CustomerRevoked', correlationId: lease('revoke'), detail: { keyIds: disabled } },
      ...disabled.map((keyId): Expected => ({ type: 'KeyDisabled', correlationId: lease('revoke'), detail: { keyId, reason: 'revoked', shard: 'home' } })),
    ];
    const trail = await expectTrail(config, customerId, revocation, before.values());
    expect(new Set(trail.slice(4).map((item) => item.correlationId)).size).toBe(1);
    // A repeated request answers the same and, with nothing left to disable, tells nothing new.
    const repeated = await revoke();
    expect(repeated.statusCode).toBe(200);
    expect(parse(repeated)).toMatchObject({ status: 'REVOKED', disabledKeyIds: [] });
    expect(await eventItemsOf(aws.dynamo, config.tableName, customerId)).toEqual(trail);

    const again = unique('reactivate');
    const thirdKeyId = await register(config, customerId, 'pro', { idempotencyKey: again, reactivate: true });

    const { attemptId } = await registrationOf(config, again);
    const values = new Map([...before, ...(await keyValues(config, again))]);
    const fingerprint = fingerprintOf(valueOf(values, thirdKeyId));
    await expectTrail(
      config,
      customerId,
      [
        ...revocation,
        {
          type: 'KeyProvisioned',
          correlationId: attemptId,
          detail: {
            keyId: thirdKeyId,
            registrationId: again,
            tier: 'pro',
            usagePlanId: stack.usagePlans.pro,
            shard: 'home',
            fingerprint,
            rotateAt: (await keyItemOf(config, customerId, thirdKeyId))?.rotateAt,
          },
        },
        { type: 'CustomerReactivated', correlationId: attemptId, detail: { registrationId: again, tier: 'pro' } },
        { type: 'KeyEmailed', correlationId: attemptId, detail: { keyId: thirdKeyId, fingerprint, reason: 'registration' } },
      ],
      values.values(),
    );
  });
});

describe('the reconciler', () => {
  it('KeyRepaired for a key out of its plan, KeyMissing for a key gone, OrphanKeyDeleted for a failed rollback’s key', async () => {
    const own = await ownStack('ev-reconcile');
    const { free, basic, pro } = own.stack.usagePlans as Record<'free' | 'basic' | 'pro', string>;
    const inNoPlan = unique('ev-noplan');
    const noPlanKey = await register(own.config, inNoPlan, 'basic');
    await aws.apiGateway.send(new DeleteUsagePlanKeyCommand({ usagePlanId: basic, keyId: noPlanKey }));
    const inWrongPlan = unique('ev-wrongplan');
    const wrongPlanKey = await register(own.config, inWrongPlan, 'free');
    await aws.apiGateway.send(new DeleteUsagePlanKeyCommand({ usagePlanId: free, keyId: wrongPlanKey }));
    await aws.apiGateway.send(new CreateUsagePlanKeyCommand({ usagePlanId: pro, keyId: wrongPlanKey, keyType: 'API_KEY' }));
    const gone = unique('ev-gone');
    const goneKey = await register(own.config, gone, 'pro');
    const goneValues = await keyValues(own.config, gone);
    await aws.apiGateway.send(new DeleteApiKeyCommand({ apiKey: goneKey }));
    // A registration the plan refused and whose rollback failed: its key is recorded ORPHANED.
    const orphaned = unique('ev-orphan');
    const refused = await registerVia(own.config, (clients) => {
      failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', planRefuses);
      failAttempts(clients.apiGateway, 'DeleteApiKeyCommand', () => awsError('InternalServerError', 500, 'boom'));
    })(postRegistration({ customerId: orphaned, email: `${orphaned}@example.com`, tier: 'basic' }), lambdaContext());
    expect(refused.statusCode).toBe(502);
    const failed = await registrationOf(own.config, orphaned);
    const orphanKey = String(failed.orphanKeyId);
    const orphanValues = await keyValues(own.config, orphaned);
    expect([...orphanValues.keys()]).toEqual([orphanKey]);
    const starts = {
      inNoPlan: await registered(own.config, inNoPlan, noPlanKey, 'basic'),
      inWrongPlan: await registered(own.config, inWrongPlan, wrongPlanKey, 'free'),
      gone: await registered(own.config, gone, goneKey, 'pro'),
    };

    // Later than the reconciler's minimum age: every key counts as old enough to judge.
    const report = await reconcileKeys({ now: new Date(Date.now() + 3 * 3_600_000), dryRun: false }, createReconcileDeps(own.config));

    expect(report.done).toEqual({ 'delete-orphan': 1, 'repair-plan': 2, 'mark-missing': 1, 'close-orphan-record': 0 });
    await expectTrail(
      own.config,
      inNoPlan,
      [
        ...starts.inNoPlan,
        {
          type: 'KeyRepaired',
          correlationId: lease('reconcile'),
          detail: { keyId: noPlanKey, usagePlanId: basic, fromPlans: [], tier: 'basic', shard: 'home', cause: 'reconcile' },
        },
      ],
      (await keyValues(own.config, inNoPlan)).values(),
    );
    await expectTrail(
      own.config,
      inWrongPlan,
      [
        ...starts.inWrongPlan,
        {
          type: 'KeyRepaired',
          correlationId: lease('reconcile'),
          detail: { keyId: wrongPlanKey, usagePlanId: free, fromPlans: [pro], tier: 'free', shard: 'home', cause: 'reconcile' },
        },
      ],
      (await keyValues(own.config, inWrongPlan)).values(),
    );
    await expectTrail(
      own.config,
      gone,
      [...starts.gone, { type: 'KeyMissing', correlationId: lease('reconcile'), detail: { keyId: goneKey, shard: 'home' } }],
      goneValues.values(),
    );
    await expectTrail(
      own.config,
      orphaned,
      [
        {
          type: 'RegistrationFailed',
          correlationId: failed.attemptId,
          detail: { registrationId: orphaned, tier: 'basic', reason: 'association-rejected', shard: 'home' },
        },
        {
          type: 'OrphanKeyDeleted',
          correlationId: lease('reconcile'),
          detail: { keyId: orphanKey, shard: 'home', reason: 'orphan-record', registrationId: orphaned },
        },
      ],
      orphanValues.values(),
    );
    expect(await keyValues(own.config, orphaned)).toEqual(new Map());
  });
});

describe('a crash right after the write', () => {
  // The events are part of the change's own transaction: once the write took effect they are
  // there, whatever happens to the caller next. `crashAfter` lets the write reach the table and
  // then kills the caller.
  let own: { stack: LocalStack; config: Config };
  beforeAll(async () => {
    own = await ownStack('ev-crash');
  });

  async function customerWithKey(tier = 'free') {
    const customerId = unique('ev-crash');
    const keyId = await register(own.config, customerId, tier);
    return { customerId, keyId, start: await registered(own.config, customerId, keyId, tier) };
  }

  it('of a registration’s record: its events are there, and the retry replays without writing more', async () => {
    const customerId = unique('ev-crash-reg');
    const request = { customerId, email: `${customerId}@example.com`, tier: 'basic' };
    const crashing = createAwsClients();
    crashAfter(crashing.dynamo, 'TransactWriteItemsCommand', 2);

    await expect(
      provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(own.config, crashing)),
    ).rejects.toBeInstanceOf(SimulatedCrash);

    const recorded = await registrationOf(own.config, customerId);
    expect(recorded).toMatchObject({ state: 'ACTIVE' });
    const start = await registered(own.config, customerId, String(recorded.keyId), 'basic');
    const trail = await expectTrail(own.config, customerId, start, (await keyValues(own.config, customerId)).values());
    const retried = await provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(own.config));
    expect(retried.outcome).toBe('replayed');
    expect(await eventItemsOf(aws.dynamo, own.config.tableName, customerId)).toEqual(trail);
  });

  it('of a rotation’s commit: KeyRotated and KeyEmailed are there with the keys recorded; nothing is left to finish', async () => {
    const { customerId, keyId, start } = await customerWithKey();
    const crashing = createAwsClients();
    crashAfter(crashing.dynamo, 'TransactWriteItemsCommand');

    await expect(
      rotateKey(await keyOf(own.config, customerId, keyId), { now: new Date(), graceDays: 7 }, createRotationDeps(own.config, crashing)),
    ).rejects.toBeInstanceOf(SimulatedCrash);

    expect(await keyOf(own.config, customerId, keyId)).toMatchObject({ state: 'RETIRING' });
    const values = await keyValues(own.config, customerId);
    const trail = await expectTrail(
      own.config,
      customerId,
      [...start, ...(await rotationEvents(own.config, customerId, keyId, 'free', 7, values))],
      values.values(),
    );
    expect(trail[2]?.correlationId).toBe(trail[3]?.correlationId);
    // The commit released the lease: the sweep has nothing of this customer's to finish.
    expect((await profileOf(own.config, customerId))?.lease).toBeUndefined();
    expect(await finishInterruptedOperations(new Date(), 10, createResumeDeps(own.config))).toMatchObject({ finished: 0 });
    expect(await eventItemsOf(aws.dynamo, own.config.tableName, customerId)).toEqual(trail);
  });

  it('of a tier change’s commit: TierChanged is there with the new tier', async () => {
    const { customerId, keyId, start } = await customerWithKey();
    const crashing = createAwsClients();
    crashAfter(crashing.dynamo, 'TransactWriteItemsCommand');

    await expect(
      changeTier({ customerId, tier: 'pro', requestId: 'crash-1', now: new Date() }, createCustomerDeps(own.config, crashing)),
    ).rejects.toBeInstanceOf(SimulatedCrash);

    expect(await profileOf(own.config, customerId)).toMatchObject({ tier: 'pro' });
    expect(await keyItemOf(own.config, customerId, keyId)).toMatchObject({ tier: 'pro', usagePlanId: own.stack.usagePlans.pro });
    await expectTrail(
      own.config,
      customerId,
      [...start, { type: 'TierChanged', correlationId: lease('change-tier'), detail: { from: 'free', to: 'pro', cause: 'crash-1', keyIds: [keyId] } }],
      (await keyValues(own.config, customerId)).values(),
    );
  });

  it('of a revocation’s commit: CustomerRevoked and KeyDisabled are there with the key recorded DISABLED', async () => {
    const { customerId, keyId, start } = await customerWithKey();
    const crashing = createAwsClients();
    crashAfter(crashing.dynamo, 'TransactWriteItemsCommand');

    await expect(revokeCustomer({ customerId, now: new Date() }, createCustomerDeps(own.config, crashing))).rejects.toBeInstanceOf(
      SimulatedCrash,
    );

    expect(await profileOf(own.config, customerId)).toMatchObject({ status: 'REVOKED', keys: { [keyId]: 'DISABLED' } });
    expect((await profileOf(own.config, customerId))?.lease).toBeUndefined();
    await expectTrail(
      own.config,
      customerId,
      [
        ...start,
        { type: 'CustomerRevoked', correlationId: lease('revoke'), detail: { keyIds: [keyId] } },
        { type: 'KeyDisabled', correlationId: lease('revoke'), detail: { keyId, reason: 'revoked', shard: 'home' } },
      ],
      (await keyValues(own.config, customerId)).values(),
    );
  });

  it('of a registration’s failure: RegistrationFailed is there with the registration FAILED; the retry replays the failure', async () => {
    const customerId = unique('ev-crash-fail');
    const request = { customerId, email: `${customerId}@example.com`, tier: 'free' };
    const crashing = createAwsClients();
    failAttempts(crashing.apiGateway, 'CreateUsagePlanKeyCommand', planRefuses);
    crashAfter(crashing.dynamo, 'TransactWriteItemsCommand', 2);

    await expect(
      provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(own.config, crashing)),
    ).rejects.toBeInstanceOf(SimulatedCrash);

    const failed = await registrationOf(own.config, customerId);
    expect(failed).toMatchObject({ state: 'FAILED', failureReason: 'association-rejected' });
    const trail = await expectTrail(
      own.config,
      customerId,
      [
        {
          type: 'RegistrationFailed',
          correlationId: failed.attemptId,
          detail: { registrationId: customerId, tier: 'free', reason: 'association-rejected', shard: 'home' },
        },
      ],
      [],
    );
    await expect(
      provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(own.config)),
    ).rejects.toMatchObject({ name: 'ProvisioningFailedError' });
    expect(await eventItemsOf(aws.dynamo, own.config.tableName, customerId)).toEqual(trail);
  });

  it('of a retirement’s disable and of a deletion: KeyDisabled and KeyDeleted are there with the key’s state', async () => {
    // A table of the test's own: the deletion is found by the retirement job, over the whole table.
    const alone = await ownStack('ev-crash-retire', { KEY_RETENTION_DAYS: '30' });
    const customerId = unique('ev-crash-retire');
    const keyId = await register(alone.config, customerId, 'basic');
    const start = await registered(alone.config, customerId, keyId, 'basic');
    const disabling = createAwsClients();
    // With no grace the rotation disables the old key at once: its write is the second transaction.
    crashAfter(disabling.dynamo, 'TransactWriteItemsCommand', 2);
    const now = new Date();

    const rotation = await rotateKey(await keyOf(alone.config, customerId, keyId), { now, graceDays: 0 }, createRotationDeps(alone.config, disabling));

    expect(rotation.outcome).toBe('rotated');
    expect(await keyOf(alone.config, customerId, keyId)).toMatchObject({ state: 'DISABLED' });
    const values = await keyValues(alone.config, customerId);
    const rotated = [...start, ...(await rotationEvents(alone.config, customerId, keyId, 'basic', 0, values))];
    const disabled: Expected = { type: 'KeyDisabled', correlationId: lease('retire'), detail: { keyId, reason: 'retired', shard: 'home' } };
    await expectTrail(alone.config, customerId, [...rotated, disabled], values.values());

    const deleting = createAwsClients();
    crashAfter(deleting.dynamo, 'TransactWriteItemsCommand');
    const deleteAt = new Date(now.getTime() + 31 * DAY_MS);
    // The job goes on past a key that fails (here: the crash); the key's own write was done.
    expect(await retireDueKeys(deleteAt, 100, createRotationDeps(alone.config, deleting))).toMatchObject({ deleted: 0, failed: 1 });

    expect(await keyOf(alone.config, customerId, keyId)).toMatchObject({ state: 'DELETED' });
    await expectTrail(
      alone.config,
      customerId,
      [...rotated, disabled, { type: 'KeyDeleted', correlationId: lease('retire'), time: deleteAt.toISOString(), detail: { keyId, shard: 'home' } }],
      values.values(),
    );
    expect(await retireDueKeys(deleteAt, 100, createRotationDeps(alone.config))).toMatchObject({ deleted: 0, failed: 0 });
  });

  it('of the reconciler’s repair: KeyRepaired is there with the key in its plan', async () => {
    const alone = await ownStack('ev-crash-reconcile');
    const customerId = unique('ev-crash-repair');
    const keyId = await register(alone.config, customerId, 'pro');
    const start = await registered(alone.config, customerId, keyId, 'pro');
    const { pro } = alone.stack.usagePlans as Record<'pro', string>;
    await aws.apiGateway.send(new DeleteUsagePlanKeyCommand({ usagePlanId: pro, keyId }));
    const crashing = createAwsClients();
    crashAfter(crashing.dynamo, 'TransactWriteItemsCommand');

    // The run goes on past the repair that failed (here: the crash); the repair's own write was done.
    const report = await reconcileKeys({ now: new Date(Date.now() + 3 * 3_600_000), dryRun: false }, createReconcileDeps(alone.config, crashing));

    expect(report).toMatchObject({ failures: 1, done: expect.objectContaining({ 'repair-plan': 0 }) });
    expect(await plansOfKey(aws.apiGateway, keyId)).toEqual([pro]);
    expect((await profileOf(alone.config, customerId))?.lease).toBeUndefined();
    await expectTrail(
      alone.config,
      customerId,
      [
        ...start,
        {
          type: 'KeyRepaired',
          correlationId: lease('reconcile'),
          detail: { keyId, usagePlanId: pro, fromPlans: [], tier: 'pro', shard: 'home', cause: 'reconcile' },
        },
      ],
      (await keyValues(alone.config, customerId)).values(),
    );
  });
});

describe('a write that failed', () => {
  // DynamoDB refuses the change's transaction (every attempt, below the SDK's retries): neither the
  // change nor its events are there. Whoever finishes the work later writes them, numbered on
  // without a gap.
  let own: { stack: LocalStack; config: Config };
  beforeAll(async () => {
    own = await ownStack('ev-failed');
  });

  it('of a registration’s record: no event, no key recorded; the retry’s attempt writes them, numbered from 1', async () => {
    const customerId = unique('ev-failed-reg');
    const request = { customerId, email: `${customerId}@example.com`, tier: 'free' };
    const failing = createAwsClients();
    let transactions = 0;
    // The claim (the first transaction) goes through; the record does not.
    failWhile(failing.dynamo, (command) => command === 'TransactWriteItemsCommand' && ++transactions > 1, dynamoDown);

    await expect(
      provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(own.config, failing)),
    ).rejects.toMatchObject({ name: 'TransientAwsError' });

    const first = await registrationOf(own.config, customerId);
    expect(first.state).toBe('PENDING');
    expect(await eventItemsOf(aws.dynamo, own.config.tableName, customerId)).toEqual([]);
    expect((await itemsOfCustomer(aws.dynamo, own.config.tableName, customerId)).filter((item) => String(item.sk).startsWith('KEY#'))).toEqual([]);
    expect((await profileOf(own.config, customerId))?.eventSeq).toBeUndefined();

    const later = new Date(Date.now() + (own.config.leaseSeconds + 1) * 1000);
    const retried = await provisionKey(
      { registrationId: customerId, request, now: later },
      { ...createProvisioningDeps(own.config), clock: () => later },
    );

    expect(retried.registration.state).toBe('ACTIVE');
    const start = await registered(own.config, customerId, String(retried.registration.keyId), 'free');
    expect(start[0]?.correlationId).not.toBe(first.attemptId);
    await expectTrail(own.config, customerId, start, (await keyValues(own.config, customerId)).values());
  });

  it('of a rotation’s commit: no event, the old key still ACTIVE; the sweep finishes it and writes them as 3 and 4', async () => {
    const customerId = unique('ev-failed-rot');
    const keyId = await register(own.config, customerId, 'pro');
    const start = await registered(own.config, customerId, keyId, 'pro');
    const failing = createAwsClients();
    failAttempts(failing.dynamo, 'TransactWriteItemsCommand', dynamoDown);

    await expect(
      rotateKey(await keyOf(own.config, customerId, keyId), { now: new Date(), graceDays: 7 }, createRotationDeps(own.config, failing)),
    ).rejects.toMatchObject({ name: 'TransientAwsError' });

    expect(await keyOf(own.config, customerId, keyId)).toMatchObject({ state: 'ACTIVE' });
    await expectTrail(own.config, customerId, start, []);
    expect(await profileOf(own.config, customerId)).toMatchObject({ dueType: 'REPAIR', lease: { mustFinish: true } });

    expect(await finishInterruptedOperations(new Date(), 10, createResumeDeps(own.config))).toMatchObject({ finished: 1 });

    const values = await keyValues(own.config, customerId);
    const trail = await expectTrail(
      own.config,
      customerId,
      [...start, ...(await rotationEvents(own.config, customerId, keyId, 'pro', 7, values))],
      values.values(),
    );
    expect(trail[2]?.correlationId).toBe(trail[3]?.correlationId);
  });

  it('of a tier change’s commit: no TierChanged and the old tier; the sweep puts the key back: KeyRepaired', async () => {
    const customerId = unique('ev-failed-tier');
    const keyId = await register(own.config, customerId, 'free');
    const start = await registered(own.config, customerId, keyId, 'free');
    const failing = createAwsClients();
    failAttempts(failing.dynamo, 'TransactWriteItemsCommand', dynamoDown);

    await expect(
      changeTier({ customerId, tier: 'basic', requestId: 'failed-1', now: new Date() }, createCustomerDeps(own.config, failing)),
    ).rejects.toMatchObject({ name: 'TransientAwsError' });

    expect(await profileOf(own.config, customerId)).toMatchObject({ tier: 'free', dueType: 'REPAIR' });
    expect(await keyItemOf(own.config, customerId, keyId)).toMatchObject({ tier: 'free', usagePlanId: own.stack.usagePlans.free });
    await expectTrail(own.config, customerId, start, []);

    expect(await finishInterruptedOperations(new Date(), 10, createResumeDeps(own.config))).toMatchObject({ finished: 1 });

    expect(await plansOfKey(aws.apiGateway, keyId)).toEqual([own.stack.usagePlans.free]);
    await expectTrail(
      own.config,
      customerId,
      [
        ...start,
        {
          type: 'KeyRepaired',
          correlationId: lease('change-tier'),
          detail: { keyId, usagePlanId: own.stack.usagePlans.free, tier: 'free', cause: 'change-tier' },
        },
      ],
      (await keyValues(own.config, customerId)).values(),
    );
  });

  it('of a revocation’s commit: no event, the keys still recorded live; the sweep finishes the revocation and writes them', async () => {
    const customerId = unique('ev-failed-revoke');
    const keyId = await register(own.config, customerId, 'basic');
    const start = await registered(own.config, customerId, keyId, 'basic');
    const failing = createAwsClients();
    failAttempts(failing.dynamo, 'TransactWriteItemsCommand', dynamoDown);

    await expect(revokeCustomer({ customerId, now: new Date() }, createCustomerDeps(own.config, failing))).rejects.toMatchObject({
      name: 'TransientAwsError',
    });

    // REVOKED from the lease on (nothing starts on the customer), but no key was recorded DISABLED.
    expect(await profileOf(own.config, customerId)).toMatchObject({ status: 'REVOKED', keys: { [keyId]: 'ACTIVE' }, dueType: 'REPAIR' });
    expect(await keyItemOf(own.config, customerId, keyId)).toMatchObject({ state: 'ACTIVE' });
    await expectTrail(own.config, customerId, start, []);

    expect(await finishInterruptedOperations(new Date(), 10, createResumeDeps(own.config))).toMatchObject({ finished: 1 });

    expect(await keyItemOf(own.config, customerId, keyId)).toMatchObject({ state: 'DISABLED' });
    await expectTrail(
      own.config,
      customerId,
      [
        ...start,
        // Taken over with the interrupted operation's intent: the sweep's owner is a revocation's.
        { type: 'CustomerRevoked', correlationId: lease('revoke'), detail: { keyIds: [keyId] } },
        { type: 'KeyDisabled', correlationId: lease('revoke'), detail: { keyId, reason: 'revoked', shard: 'home' } },
      ],
      (await keyValues(own.config, customerId)).values(),
    );
  });
});
