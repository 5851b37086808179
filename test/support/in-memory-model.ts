import fc, { type Scheduler } from 'fast-check';
import { changeTier, type TierChangeDeps } from '../../shared/customers/change-tier';
import { DAY_MS, isLive } from '../../shared/core/model';
import { revokeCustomer, type RevocationDeps } from '../../shared/customers/revoke-customer';
import { KeyplanError } from '../../shared/errors';
import { enqueueRegistration, type EnqueueDeps } from '../../shared/provisioning/enqueue-registration';
import { provisionFromMessage } from '../../shared/provisioning/provision-from-message';
import { provisionKey, type ProvisioningDeps } from '../../shared/provisioning/provision-key';
import { keyNameFor, type RegistrationRequest } from '../../shared/core/registration';
import { resumeStalledRegistrations, type ResumeDeps } from '../../shared/provisioning/resume-registrations';
import type { ReconcileDeps } from '../../shared/reconcile/ports';
import { ownKeyFilter, reconcileKeys } from '../../shared/reconcile/reconcile-keys';
import { rotateKey, type RotationDeps } from '../../shared/rotation/rotate-key';
import { retireDueKeys, rotateCustomerKeys, rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import { finishInterruptedOperations, type FinishDeps } from '../../shared/sweep/finish-interrupted';
import { type CallFault, directPorts, type OperationHandle, operationPorts, type WorldPorts } from './in-memory-scheduling';
import { type ApiKeyState, FakeAwsError, InMemoryWorld } from './in-memory-world';
import type { Shard } from '../../shared/core/shards';
import type { DrainDeps } from '../../shared/shards/drain-shard';

/*
 * The concurrency model of issue 13 (DESIGN §7): a few customers, one or two batches of operations
 * on them, each run at once under fast-check's scheduler (every port call an interleaving point,
 * crashes and AWS failures injected at chosen calls, the clock moved by operations of its own so
 * leases expire mid-flight), then the sweep, the scheduled jobs and a reconcile, one after another
 * and without faults, and finally the invariants over what API Gateway, the table and SES hold.
 */

const MINUTE_MS = 60_000;
export const START = new Date('2026-03-02T09:00:00.000Z');
export const TIER_MAP = { free: 'plan-free', pro: 'plan-pro' } as const;
export const TIERS = Object.keys(TIER_MAP) as (keyof typeof TIER_MAP)[];
/** The plan of the other stage that shares the account. */
export const FOREIGN_PLAN = 'plan-other-stage';
export const PREFIX = 'kp-model';
export const STAGE = 'model';
/** The one shard of the model's world: the home shard, as in a deployment without a shard list. */
export const SHARDS = [{ id: 'home', plans: TIER_MAP, keyCeiling: 10_000, state: 'accepting' }] as const;
export const SETTINGS = {
  shards: SHARDS,
  keyNamePrefix: PREFIX,
  stage: STAGE,
  rotationDays: 90,
  graceDays: 7,
  reminderDays: 2,
  keyRetentionDays: 30,
  leaseSeconds: 60,
  sweepSeconds: 60,
  minKeyAgeMinutes: 5,
  resumeAfterSeconds: 60,
} as const;
const LEASE_MS = SETTINGS.leaseSeconds * 1000;
/** The model's settings with another shard list (the shard model's worlds). */
export type ModelSettings = Omit<typeof SETTINGS, 'shards'> & { shards: readonly Shard[] };

export type CustomerStart = 'none' | 'active' | 'rotated' | 'revoked';

export interface ModelCustomer {
  id: string;
  start: CustomerStart;
  tier: keyof typeof TIER_MAP;
}

/** The operations that run at once, each optionally hit by a fault at one of its port calls. */
export type Operation =
  | {
      kind: 'register';
      customer: number;
      /**
       * Registration ids repeat: `<customer>-r<n>`; r0 is the one a pre-registered customer used.
       * The tier is the customer's for r0 and r2, the other one for r1, so that a repeated id is the
       * same request, unless `otherPayload` (then the idempotency key is reused).
       */
      registration: number;
      otherPayload: boolean;
      reactivate: boolean;
      /** `queued`: enqueueRegistration, then the worker's provisionFromMessage. */
      mode: 'sync' | 'queued';
      fault?: CallFault | undefined;
    }
  | { kind: 'rotate-due'; scheduleOffsetMs: number; fault?: CallFault | undefined }
  | { kind: 'rotate-customer'; customer: number; graceDays: number | undefined; fault?: CallFault | undefined }
  | { kind: 'retire-due'; scheduleOffsetMs: number; fault?: CallFault | undefined }
  | {
      kind: 'change-tier';
      customer: number;
      tier: keyof typeof TIER_MAP;
      /** A billing event's time relative to the clock; none for a portal request. */
      eventOffsetMs: number | undefined;
      fault?: CallFault | undefined;
    }
  | { kind: 'revoke'; customer: number; fault?: CallFault | undefined }
  | { kind: 'reconcile'; fault?: CallFault | undefined }
  | { kind: 'sweep'; fault?: CallFault | undefined }
  | { kind: 'tick'; ms: number };

/**
 * The customers as they start, and one or two batches of operations, each run at once. Between two
 * batches every lease runs out: the second meets what the first left (interrupted operations,
 * stalled registrations) while the sweep, too, may be running.
 */
export interface Scenario {
  customers: ModelCustomer[];
  batches: Operation[][];
}

// ---------------------------------------------------------------------------------------------
// Generators

/** The calls that change something or decide what is changed: where a fault tells most. */
const FAULTED_METHODS = [
  'registrations.claim',
  'registrations.takeOver',
  'registrations.recordKey',
  'ledger.acquire',
  'ledger.commit',
  'ledger.renew',
  'gateway.ensureKey',
  'gateway.addKeyToPlan',
  'gateway.removeKeyFromPlan',
  'gateway.deleteKey',
  'gateway.disableKey',
  'mailer.send',
];

const faultKind = fc.constantFrom<CallFault['kind']>('crash-before', 'crash-after', 'crash-after', 'fail', 'fail-after', 'refuse');

/** A fault at the n-th call of the operation, or at the first or second call of one method. */
export const faultArbitrary: fc.Arbitrary<CallFault | undefined> = fc.option(
  fc.oneof(
    fc.record({ call: fc.integer({ min: 1, max: 20 }), kind: faultKind }),
    fc.record({ method: fc.constantFrom(...FAULTED_METHODS), call: fc.integer({ min: 1, max: 2 }), kind: faultKind }),
  ),
  { nil: undefined, freq: 3 },
);

export const tierArbitrary = fc.constantFrom(...TIERS);

/**
 * The operations on a customer both model tests generate (this one and the shards model), over
 * an arbitrary of the customer's index; `otherPayload` says how often a registration id is
 * reused with another request.
 */
export function customerOperationArbitraries(
  customer: fc.Arbitrary<number>,
  otherPayload: fc.Arbitrary<boolean> = fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
) {
  return {
    register: fc.record({
      kind: fc.constant('register' as const),
      customer,
      registration: fc.integer({ min: 0, max: 2 }),
      otherPayload,
      reactivate: fc.boolean(),
      mode: fc.constantFrom('sync' as const, 'queued' as const),
      fault: faultArbitrary,
    }),
    rotateCustomer: fc.record({
      kind: fc.constant('rotate-customer' as const),
      customer,
      graceDays: fc.constantFrom<number | undefined>(0, undefined),
      fault: faultArbitrary,
    }),
    retireDue: fc.record({
      kind: fc.constant('retire-due' as const),
      // The schedule's time chooses the work: late, now, past a grace period, and past the
      // retention of disabled keys (they are deleted).
      scheduleOffsetMs: fc.constantFrom(-MINUTE_MS * 30, 0, 8 * DAY_MS, 31 * DAY_MS),
      fault: faultArbitrary,
    }),
    changeTier: fc.record({
      kind: fc.constant('change-tier' as const),
      customer,
      tier: tierArbitrary,
      eventOffsetMs: fc.constantFrom<number | undefined>(undefined, -MINUTE_MS, MINUTE_MS),
      fault: faultArbitrary,
    }),
    revoke: fc.record({ kind: fc.constant('revoke' as const), customer, fault: faultArbitrary }),
  };
}

function operationArbitrary(customers: number): fc.Arbitrary<Operation> {
  // Most operations contend for the first customer; the others keep the jobs' batches mixed.
  const customer = fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: customers - 1 }) },
  );
  const on = customerOperationArbitraries(customer);
  return fc.oneof(
    { weight: 4, arbitrary: on.register },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('rotate-due' as const),
        // The schedule's time: late (in the past), or ahead of the clock so every key is due.
        scheduleOffsetMs: fc.constantFrom(-MINUTE_MS * 30, 91 * DAY_MS, 200 * DAY_MS),
        fault: faultArbitrary,
      }),
    },
    { weight: 2, arbitrary: on.rotateCustomer },
    { weight: 2, arbitrary: on.retireDue },
    { weight: 2, arbitrary: on.changeTier },
    { weight: 2, arbitrary: on.revoke },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('reconcile' as const), fault: faultArbitrary }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const), fault: faultArbitrary }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('tick' as const),
        // Within a lease, past half of one (a renewal), past a whole one, past the reconciler's age.
        ms: fc.constantFrom(
          1_000,
          LEASE_MS / 2 + 1_000,
          LEASE_MS + 1_000,
          LEASE_MS + 1_000,
          (SETTINGS.minKeyAgeMinutes + 1) * MINUTE_MS,
        ),
      }),
    },
  );
}

export const scenarioArbitrary: fc.Arbitrary<Scenario> = fc
  .array(
    fc.record({
      start: fc.constantFrom<CustomerStart>('none', 'active', 'active', 'rotated', 'revoked'),
      tier: tierArbitrary,
    }),
    { minLength: 2, maxLength: 3 },
  )
  .chain((starts) =>
    fc.record({
      customers: fc.constant(starts.map((start, index) => ({ id: `c${index + 1}`, ...start }))),
      batches: fc.array(fc.array(operationArbitrary(starts.length), { minLength: 2, maxLength: 7 }), { minLength: 1, maxLength: 2 }),
    }),
  );

// ---------------------------------------------------------------------------------------------
// Wiring the use cases to a world's ports

/**
 * Every use case's deps over one set of ports, with the model's settings (each takes what it
 * needs); `drain` only when the ports have the shard items.
 */
export function depsOf(ports: WorldPorts, settings: ModelSettings = SETTINGS) {
  const { gateway: keys, ledger, registrations: store, keyTable, mailer, queue, clock } = ports;
  // satisfies, not a type: the sweep's deps spread these and need the whole ledger.
  const provisioning = { store, keys, mailer, ledger, clock, settings } satisfies ProvisioningDeps;
  const rotation: RotationDeps = { keys, keyStore: keyTable, ledger, store, mailer, clock, settings };
  const reconcile: ReconcileDeps = { inventory: keys, records: keyTable, ledger, registrations: store, clock, settings };
  return {
    provisioning,
    resume: { ...provisioning, stalled: store } satisfies ResumeDeps,
    enqueue: { store, queue, clock, settings } satisfies EnqueueDeps,
    rotation,
    tierChange: { keys, ledger, clock, settings } satisfies TierChangeDeps,
    revocation: { keys, ledger, clock, settings } satisfies RevocationDeps,
    finish: rotation satisfies FinishDeps,
    reconcile,
    drain: ports.registry ? ({ ...rotation, registry: ports.registry } satisfies DrainDeps) : undefined,
  };
}

export const emailOf = (customerId: string) => `${customerId}@example.com`;

function requestOf(customerId: string, tier: string, reactivate: boolean): RegistrationRequest {
  return { customerId, email: emailOf(customerId), tier, ...(reactivate ? { reactivate: true } : {}) };
}

// ---------------------------------------------------------------------------------------------
// One run

export interface OperationOutcome {
  label: string;
  /** `ok`, `crashed`, `running` (never settled, not crashed: a hang) or the error's name and message. */
  result: string;
  /** An error no use case should let out: a TypeError, a fake's contract error, ... */
  unexpected: boolean;
}

export interface RunResult {
  world: InMemoryWorld;
  outcomes: OperationOutcome[];
  violations: string[];
}

interface Seeded {
  foreignStage: ApiKeyState;
  foreignStageSameName: ApiKeyState;
  otherPrefix: ApiKeyState;
}

/** A world with the scenario's customers as they start, made by the real use cases, faultless. */
export async function prepareWorld(scenario: Scenario): Promise<{ world: InMemoryWorld; seeded: Seeded }> {
  const world = new InMemoryWorld(
    { tierMap: TIER_MAP, resumeAfterSeconds: SETTINGS.resumeAfterSeconds, foreignPlans: [FOREIGN_PLAN] },
    START,
  );
  // Keys keyplan must never touch: another stage's, named exactly as this stage names keys (one for
  // a registration id no operation uses, one for c1's first registration: stages that share an
  // account and a name prefix see the same ids from the portal) and tagged with a customer of this
  // run; and another tool's (another prefix, legacy: no stage tag, in no plan).
  const foreign = (registrationId: string, customerId: string) =>
    world.seedApiKey({
      name: keyNameFor(PREFIX, registrationId),
      tags: {
        'keyplan:managed': 'true',
        'keyplan:stage': 'other',
        'keyplan:customer': customerId,
        'keyplan:registration': registrationId,
      },
      customerId,
      usagePlanId: FOREIGN_PLAN,
    });
  const seeded: Seeded = {
    foreignStage: foreign('c2-r9', 'c2'),
    foreignStageSameName: foreign('c1-r0', 'c1'),
    otherPrefix: world.seedApiKey({
      name: keyNameFor('kp-other', 'c2-r0'),
      tags: { 'keyplan:managed': 'true', 'keyplan:customer': 'c2', 'keyplan:registration': 'c2-r0' },
      customerId: 'c2',
    }),
  };
  const deps = depsOf(directPorts(world));
  for (const customer of scenario.customers) {
    if (customer.start === 'none') continue;
    await provisionKey(
      { registrationId: `${customer.id}-r0`, request: requestOf(customer.id, customer.tier, false), now: world.clock() },
      deps.provisioning,
    );
    world.advance(MINUTE_MS);
    if (customer.start === 'rotated') {
      const [key] = await deps.rotation.keyStore.keysOf(customer.id);
      if (!key) throw new Error(`setup: ${customer.id} has no key`);
      await rotateKey(key, { now: world.clock(), graceDays: SETTINGS.graceDays }, deps.rotation);
    }
    if (customer.start === 'revoked') await revokeCustomer({ customerId: customer.id, now: world.clock() }, deps.revocation);
  }
  world.advance(10 * MINUTE_MS);
  world.note('--- setup done ---');
  return { world, seeded };
}

export function labelOf(operation: Operation, id: string, scenario: Pick<Scenario, 'customers'>): string {
  const customer = 'customer' in operation ? scenario.customers[operation.customer]?.id : undefined;
  const parts: string[] = [`#${id}`, operation.kind];
  if (customer) parts.push(customer);
  if (operation.kind === 'register') {
    parts.push(`${customer}-r${operation.registration}`, registrationTier(operation, scenario), operation.mode);
    if (operation.otherPayload) parts.push('other-payload');
    if (operation.reactivate) parts.push('reactivate');
  }
  if (operation.kind === 'rotate-due' || operation.kind === 'retire-due') parts.push(`at ${formatOffset(operation.scheduleOffsetMs)}`);
  if (operation.kind === 'rotate-customer') parts.push(`grace ${operation.graceDays ?? 'default'}`);
  if (operation.kind === 'change-tier') {
    parts.push(operation.tier);
    if (operation.eventOffsetMs !== undefined) parts.push(`event ${formatOffset(operation.eventOffsetMs)}`);
  }
  if (operation.kind === 'tick') parts.push(`+${operation.ms / 1000}s`);
  const { fault } = 'fault' in operation ? operation : { fault: undefined };
  if (fault) parts.push(`[${fault.kind} @${fault.method ? `${fault.method} #${fault.call}` : `call ${fault.call}`}]`);
  return parts.join(' ');
}

function registrationTier(operation: Extract<Operation, { kind: 'register' }>, scenario: Pick<Scenario, 'customers'>): string {
  const own = scenario.customers[operation.customer]?.tier ?? 'free';
  const other = TIERS.find((tier) => tier !== own) ?? own;
  return (operation.registration === 1) !== operation.otherPayload ? other : own;
}

function formatOffset(ms: number): string {
  const sign = ms < 0 ? '-' : '+';
  const abs = Math.abs(ms);
  return abs >= DAY_MS ? `${sign}${abs / DAY_MS}d` : `${sign}${abs / MINUTE_MS}min`;
}

/**
 * Runs one operation with the ports it was given. A retirement run's schedule time goes into
 * `retireTimes`: the retirement job runs again at that time in the quiesce, as its next event would.
 */
export async function perform(
  operation: Exclude<Operation, { kind: 'tick' }>,
  world: InMemoryWorld,
  ports: WorldPorts,
  scenario: Pick<Scenario, 'customers'>,
  retireTimes: Date[],
  settings: ModelSettings = SETTINGS,
) {
  const deps = depsOf(ports, settings);
  const now = ports.clock();
  const customerId = 'customer' in operation ? (scenario.customers[operation.customer]?.id ?? 'c1') : 'c1';
  switch (operation.kind) {
    case 'register': {
      const registrationId = `${customerId}-r${operation.registration}`;
      const request = requestOf(customerId, registrationTier(operation, scenario), operation.reactivate);
      if (operation.mode === 'sync') {
        await provisionKey({ registrationId, request, now }, deps.provisioning);
        return;
      }
      const queued = await enqueueRegistration({ registrationId, request, now }, deps.enqueue);
      if (queued.outcome === 'replayed') return;
      // The worker takes the message up (a later delivery of the same message looks the same).
      await provisionFromMessage(JSON.stringify({ registrationId, request }), ports.clock(), deps.provisioning);
      return;
    }
    case 'rotate-due':
      await rotateDueKeys(new Date(now.getTime() + operation.scheduleOffsetMs), 10, deps.rotation);
      return;
    case 'rotate-customer':
      await rotateCustomerKeys(customerId, { now, graceDays: operation.graceDays }, deps.rotation);
      return;
    case 'retire-due': {
      const scheduled = new Date(now.getTime() + operation.scheduleOffsetMs);
      retireTimes.push(scheduled);
      await retireDueKeys(scheduled, 10, deps.rotation);
      return;
    }
    case 'change-tier':
      await changeTier(
        {
          customerId,
          tier: operation.tier,
          requestId: `tier-${world.trace.length}`,
          now,
          eventAt: operation.eventOffsetMs === undefined ? undefined : new Date(now.getTime() + operation.eventOffsetMs).toISOString(),
        },
        deps.tierChange,
      );
      return;
    case 'revoke':
      await revokeCustomer({ customerId, now }, deps.revocation);
      return;
    case 'reconcile':
      await reconcileKeys({ now, dryRun: false }, deps.reconcile);
      return;
    case 'sweep':
      await resumeStalledRegistrations(now, 10, deps.resume);
      await finishInterruptedOperations(now, 10, deps.finish);
      return;
  }
}

/** Errors a use case may end with: domain errors, AWS errors passed on, the injected failures. */
function isExpected(error: unknown): boolean {
  return (
    error instanceof KeyplanError ||
    error instanceof FakeAwsError ||
    (error instanceof Error && error.message.startsWith('simulated'))
  );
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Runs the scenario's batches, each at once under the scheduler, then quiesces and checks. */
export async function runScenario(scenario: Scenario, scheduler: Scheduler): Promise<RunResult> {
  const { world, seeded } = await prepareWorld(scenario);
  const retireTimes: Date[] = [];
  const outcomes: OperationOutcome[] = [];
  for (const [batch, operations] of scenario.batches.entries()) {
    if (batch > 0) {
      world.advance(LEASE_MS + 1_000);
      world.note(`--- batch ${batch + 1} ---`);
    }
    outcomes.push(...(await runBatch(operations, batch, { world, scenario, scheduler, retireTimes })));
  }
  const violations = outcomes
    .filter((outcome) => outcome.unexpected || outcome.result === 'running')
    .map((outcome) =>
      outcome.result === 'running' ? `${outcome.label}: never finished (waits outside the scheduler)` : `${outcome.label}: threw ${outcome.result}`,
    );
  world.note('--- quiesce ---');
  violations.push(...(await quiesce(world, retireTimes)));
  violations.push(...checkInvariants(world, scenario, seeded));
  return { world, outcomes, violations };
}

async function runBatch(
  operations: readonly Operation[],
  batch: number,
  run: { world: InMemoryWorld; scenario: Scenario; scheduler: Scheduler; retireTimes: Date[] },
): Promise<OperationOutcome[]> {
  const { world, scenario, scheduler, retireTimes } = run;
  const launched = operations.map((operation, index) =>
    launchOperation(labelOf(operation, `${batch + 1}.${index + 1}`, scenario), operation.kind === 'tick' ? operation.ms : undefined, {
      world,
      scheduler,
      fault: 'fault' in operation ? operation.fault : undefined,
      perform:
        operation.kind === 'tick' ? undefined : (ports: WorldPorts) => perform(operation, world, ports, scenario, retireTimes),
    }),
  );
  return settleOperations(scheduler, launched);
}

/** An operation started under the scheduler: what became of it, and whether it crashed. */
export interface LaunchedOperation {
  outcome: OperationOutcome;
  handle?: OperationHandle | undefined;
}

/**
 * Starts one operation with ports of its own under the scheduler (every port call an interleaving
 * point, `fault` at one of them), or, with `tickMs`, a clock tick that lands between two calls of
 * the others (a lease may run out mid-flight). Nothing runs until the scheduler lets it.
 */
export function launchOperation(
  label: string,
  tickMs: number | undefined,
  options: {
    world: InMemoryWorld;
    scheduler: Scheduler;
    fault?: CallFault | undefined;
    perform?: ((ports: WorldPorts) => Promise<unknown>) | undefined;
  },
): LaunchedOperation {
  const { world, scheduler } = options;
  const outcome: OperationOutcome = { label, result: 'running', unexpected: false };
  if (tickMs !== undefined || !options.perform) {
    void scheduler.schedule(Promise.resolve(), label).then(() => {
      world.advance(tickMs ?? 0);
      outcome.result = 'ok';
    });
    return { outcome };
  }
  const handle = operationPorts(world, label, { scheduler, fault: options.fault });
  void options.perform(handle.ports).then(
    () => {
      outcome.result = 'ok';
    },
    (error: unknown) => {
      outcome.result = describeError(error);
      outcome.unexpected = !isExpected(error);
    },
  );
  return { outcome, handle };
}

/** Lets every launched operation run to its end (or its crash) in the scheduler's order. */
export async function settleOperations(scheduler: Scheduler, launched: readonly LaunchedOperation[]): Promise<OperationOutcome[]> {
  await scheduler.waitIdle();
  // Anything still running neither crashed nor can make progress: it waits for something outside
  // the scheduler (a timer), which a use case must not.
  const stuck = () => launched.some(({ outcome, handle }) => outcome.result === 'running' && !handle?.crashed());
  for (let round = 0; round < 5 && stuck(); round++) {
    await new Promise((resolve) => setImmediate(resolve));
    await scheduler.waitIdle();
  }
  for (const { outcome, handle } of launched) {
    if (outcome.result === 'running' && handle?.crashed()) outcome.result = 'crashed';
  }
  return launched.map(({ outcome }) => outcome);
}

/**
 * Every lease runs out, then the sweep (resume and finish), the retirement and rotation jobs run
 * until nothing is left to do, faultless, one after another; then a reconcile with every key old
 * enough to be judged. The retirement job runs at the clock and again at every schedule time the
 * batch's retirement runs had (one ahead of the clock died, perhaps, and its next run finishes
 * what it left). Returns what never settled.
 */
export async function quiesce(
  world: InMemoryWorld,
  retireTimes: readonly Date[] = [],
  settings: ModelSettings = SETTINGS,
): Promise<string[]> {
  const deps = depsOf(directPorts(world), settings);
  const errors: string[] = [];
  const attempt = async (what: string, run: () => Promise<unknown>) => {
    try {
      await run();
    } catch (error) {
      errors.push(`quiesce ${what}: threw ${describeError(error)}`);
    }
  };
  let settled = false;
  for (let round = 0; round < 6 && !settled; round++) {
    // Past every lease and every resume backoff (60 s doubling, at most 64 min).
    world.advance(LEASE_MS + 65 * MINUTE_MS);
    const now = world.clock();
    await attempt('resumeStalledRegistrations', () => resumeStalledRegistrations(now, 50, deps.resume));
    await attempt('finishInterruptedOperations', () => finishInterruptedOperations(now, 50, deps.finish));
    for (const at of [now, ...retireTimes.filter((time) => time > now)]) {
      await attempt('retireDueKeys', () => retireDueKeys(at, 50, deps.rotation));
    }
    await attempt('rotateDueKeys', () => rotateDueKeys(now, 50, deps.rotation));
    settled = unsettled(world).length === 0;
  }
  const left = unsettled(world);
  world.advance((SETTINGS.minKeyAgeMinutes + 1) * MINUTE_MS);
  await attempt('reconcileKeys', () => reconcileKeys({ now: world.clock(), dryRun: false }, deps.reconcile));
  return [...errors, ...left.map((line) => `not settled after the sweep: ${line}`)];
}

/** What the sweep should have finished: unfinished registrations, held leases, REPAIR entries. */
function unsettled(world: InMemoryWorld): string[] {
  const lines: string[] = [];
  for (const registration of world.registrations.values()) {
    if (!['ACTIVE', 'FAILED', 'REVOKED'].includes(registration.state)) {
      lines.push(`registration ${registration.registrationId} is ${registration.state}`);
    }
  }
  for (const profile of world.profiles.values()) {
    // An expired lease that need not be finished is as good as none: the next operation takes it.
    const { lease } = profile;
    if (lease && (lease.mustFinish || lease.until >= world.now)) {
      lines.push(`customer ${profile.customerId} is held by ${lease.operation} (${lease.owner}${lease.mustFinish ? ', must finish' : ''})`);
    }
    else if (profile.repairDueAt !== undefined) lines.push(`customer ${profile.customerId} is due for repair`);
    if (profile.status === 'PENDING') lines.push(`customer ${profile.customerId} is PENDING`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Invariants

const TRACKED = new Set(['ACTIVE', 'RETIRING', 'DISABLED']);

/**
 * DESIGN §7's invariants over the world after the quiesce:
 * 1. A customer that is not revoked (registered: ACTIVE) has at least one enabled key; every
 *    enabled key of a customer that is not revoked is in exactly one plan, its tier's, and is
 *    ACTIVE or RETIRING in the customer's list.
 * 2. The key value most recently emailed to a customer is alive (exists in API Gateway).
 * 3. A revoked customer has no enabled key.
 * 4. After the reconcile, every managed key of this stage has a live record (an item that still
 *    tracks it, and the customer's list agrees), and every such record's key exists.
 * 5. The other stage's and the other tool's keys are untouched.
 */
export function checkInvariants(world: InMemoryWorld, scenario: Scenario, seeded: Seeded): string[] {
  const violations: string[] = [];
  const isOwnKey = ownKeyFilter(PREFIX, STAGE);
  const ownKeys = [...world.apiKeys.values()].filter((key) =>
    isOwnKey({ id: key.id, name: key.name, createdAt: key.createdAt, tags: key.tags }),
  );

  for (const { id: customerId } of scenario.customers) {
    const profile = world.profiles.get(customerId);
    const status = profile?.status ?? 'no record';
    const enabled = ownKeys.filter((key) => key.tags['keyplan:customer'] === customerId && key.enabled);
    if (profile?.status === 'REVOKED') {
      for (const key of enabled) violations.push(`${customerId} is REVOKED but its key ${key.id} is enabled`);
    } else {
      if (profile?.status === 'ACTIVE' && enabled.length === 0) violations.push(`${customerId} is ACTIVE but has no enabled key`);
      const plan = profile ? TIER_MAP[profile.tier as keyof typeof TIER_MAP] : undefined;
      for (const key of enabled) {
        const plans = world.plansOf(key.id);
        if (plans.length !== 1 || plans[0] !== plan) {
          violations.push(
            `${customerId} (${status}, tier ${profile?.tier ?? '-'}): enabled key ${key.id} is in [${plans.join(', ')}], not exactly [${plan ?? 'its tier plan'}]`,
          );
        }
        const listed = profile?.keys[key.id];
        if (listed !== 'ACTIVE' && listed !== 'RETIRING') {
          violations.push(`${customerId} (${status}): enabled key ${key.id} is ${listed ?? 'not'} in its list, not ACTIVE/RETIRING`);
        }
      }
    }

    // A revoked customer's keys are deleted once their retention is over (DESIGN §1, Revocation):
    // it was told they stop working. Every other customer keeps the key it was told of last.
    const keyEmails = world.emails.filter((email) => email.to === emailOf(customerId) && email.keyValues.length > 0);
    const last = profile?.status === 'REVOKED' ? undefined : keyEmails.at(-1);
    for (const value of last?.keyValues ?? []) {
      const keyId = world.keyValues.get(value);
      if (!keyId || !world.apiKeys.has(keyId)) {
        violations.push(
          `${customerId} (${status}): the key most recently emailed (${keyId}, the last of ${keyEmails.length} key emails) no longer exists`,
        );
      }
    }
  }

  for (const key of ownKeys) {
    const customerId = key.tags['keyplan:customer'] ?? '';
    const item = world.keyItems.get(customerId)?.get(key.id);
    const listed = world.profiles.get(customerId)?.keys[key.id];
    if (!item || !TRACKED.has(item.state)) {
      violations.push(`after the reconcile, managed key ${key.id} of ${customerId} (${key.enabled ? 'enabled' : 'disabled'}) has ${item ? `a ${item.state} record` : 'no record'}`);
    } else if (listed !== item.state) {
      violations.push(`after the reconcile, managed key ${key.id} of ${customerId}: its item is ${item.state}, the customer's list says ${listed ?? 'nothing'}`);
    } else if (item.state === 'DISABLED' && key.enabled) {
      violations.push(`after the reconcile, managed key ${key.id} of ${customerId} is recorded DISABLED but enabled`);
    }
  }
  for (const item of world.allKeyItems()) {
    const key = world.apiKeys.get(item.keyId);
    const profile = world.profiles.get(item.customerId);
    if (TRACKED.has(item.state) && !key) {
      violations.push(`after the reconcile, the ${item.state} record of ${item.keyId} (${item.customerId}) points to a key that is gone`);
    }
    // What the customer is told works does: a live record of a customer that is not revoked names
    // an enabled key in exactly its tier's plan, and says so.
    if (key && profile && profile.status !== 'REVOKED' && isLive(item.state)) {
      const plan = TIER_MAP[profile.tier as keyof typeof TIER_MAP];
      const plans = world.plansOf(item.keyId);
      const where = `${item.customerId} (${profile.status}, tier ${profile.tier}): ${item.state} record of ${item.keyId}`;
      if (!key.enabled) violations.push(`${where} names a disabled key`);
      if (plans.length !== 1 || plans[0] !== plan) violations.push(`${where} names a key in [${plans.join(', ')}], not exactly [${plan}]`);
      if (item.usagePlanId !== plan) violations.push(`${where} says plan ${item.usagePlanId}, the tier's is ${plan}`);
    }
  }

  for (const [what, seededKey] of Object.entries(seeded)) {
    const now = world.apiKeys.get(seededKey.id);
    const plansBefore = what === 'otherPrefix' ? [] : [FOREIGN_PLAN];
    if (world.touchedKeys.has(seededKey.id)) violations.push(`${what} key ${seededKey.id} was touched`);
    if (!now || !now.enabled || JSON.stringify(world.plansOf(seededKey.id)) !== JSON.stringify(plansBefore)) {
      violations.push(`${what} key ${seededKey.id} changed: ${now ? `enabled=${now.enabled} plans=[${world.plansOf(seededKey.id).join(', ')}]` : 'deleted'}`);
    }
  }
  violations.push(...eventViolations(world));
  return violations;
}

/**
 * The outbox (DESIGN §9), whatever interleaved: each customer's events are numbered 1..n with no
 * gap or repeat, the profile counts n, and the newest KeyEmailed names the key the customer was
 * last emailed (a customer seeded without events has none to check).
 */
export function eventViolations(world: InMemoryWorld): string[] {
  const violations: string[] = [];
  for (const [customerId, events] of world.events) {
    const sequences = events.map((recorded) => recorded.sequence);
    if (sequences.some((sequence, index) => sequence !== index + 1)) {
      violations.push(`${customerId}: events numbered [${sequences.join(', ')}], not 1..${events.length}`);
    }
    const profile = world.profiles.get(customerId);
    if ((profile?.eventSeq ?? 0) !== events.length) {
      violations.push(`${customerId}: the profile counts ${profile?.eventSeq ?? 0} events, ${events.length} were written`);
    }
    const lastEmailed = events.filter((recorded) => recorded.type === 'KeyEmailed').at(-1);
    if (lastEmailed && lastEmailed.keyId !== profile?.emailedKeyId) {
      violations.push(`${customerId}: the last KeyEmailed names ${lastEmailed.keyId}, the profile says ${profile?.emailedKeyId} was emailed`);
    }
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------
// The property

/** What a failing run reports: the scenario, what became of each operation, the world's trace. */
export function report(scenario: Scenario, result: RunResult): string {
  return [
    'violations:',
    ...result.violations.map((line) => `  - ${line}`),
    'customers at start:',
    ...scenario.customers.map((customer) => `  ${customer.id}: ${customer.start} (${customer.tier})`),
    'operations (each batch run at once; between batches every lease runs out):',
    ...result.outcomes.map((outcome) => `  ${outcome.label} -> ${outcome.result}`),
    'trace (every change, in order):',
    ...result.world.trace.map((line) => `  ${line}`),
  ].join('\n');
}

/** Runs the property over `runs` interleavings (or the replay the environment asks for); throws the report of a failure. */
export async function expectEveryInterleavingSafe(runs: number): Promise<void> {
  await fc.assert(concurrencyProperty(), modelParameters(runs));
}

/** One interleaving: fails with the report when an invariant breaks. `onRun` counts them. */
export const concurrencyProperty = (onRun?: () => void) =>
  fc.asyncProperty(scenarioArbitrary, fc.scheduler(), async (scenario, scheduler) => {
    const result = await runScenario(scenario, scheduler);
    onRun?.();
    if (result.violations.length > 0) throw new Error(report(scenario, result));
  });

/** fast-check parameters from the environment: a replay (`KEYPLAN_MODEL_SEED`, `KEYPLAN_MODEL_PATH`) or a run count. */
export function modelParameters(defaultRuns: number): fc.Parameters<[Scenario, Scheduler]> {
  const seed = process.env.KEYPLAN_MODEL_SEED;
  const path = process.env.KEYPLAN_MODEL_PATH;
  const runs = Number(process.env.KEYPLAN_MODEL_RUNS ?? defaultRuns);
  // A replay of one case (seed and path) runs that case as it is, without shrinking it further.
  return { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}), ...(seed && path ? { path, endOnFailure: true } : {}) };
}
