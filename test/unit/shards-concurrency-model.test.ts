import fc, { type Scheduler } from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_MS, isLive } from '../../shared/core/model';
import { keyShardOf, placementOrder, planIn, type Shard } from '../../shared/core/shards';
import { NoShardCapacityError, ValidationError } from '../../shared/errors';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { keyNameFor } from '../../shared/core/registration';
import { ownKeyFilter } from '../../shared/reconcile/reconcile-keys';
import { changeTier } from '../../shared/customers/change-tier';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import { rotateKey } from '../../shared/rotation/rotate-key';
import { retireDueKeys, rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { drainShard } from '../../shared/shards/drain-shard';
import { finishInterruptedOperations } from '../../shared/sweep/finish-interrupted';
import { runScheduledRotation } from '../../shared/shards/scheduled-rotation';
import { reportShards } from '../../shared/shards/shard-report';
import {
  type CustomerStart,
  depsOf,
  customerOperationArbitraries,
  emailOf,
  eventViolations,
  faultArbitrary,
  FOREIGN_PLAN,
  labelOf,
  type LaunchedOperation,
  launchOperation,
  type ModelCustomer,
  type ModelSettings,
  type Operation,
  type OperationOutcome,
  perform,
  PREFIX,
  quiesce,
  SETTINGS,
  settleOperations,
  STAGE,
  tierArbitrary,
} from '../support/in-memory-model';
import { type CallFault, directPorts, operationPorts, type WorldPorts } from '../support/in-memory-scheduling';
import { type ApiKeyState, InMemoryWorld } from '../support/in-memory-world';

/*
 * DESIGN §7 over DESIGN §8: the concurrency model of concurrency-model.test.ts, over two or three
 * shards (each its own API Gateway, plans and count of placed keys, with a high-water mark of a
 * few keys), with a drain among the operations. fast-check generates a sequence of commands
 * (fc.commands): operations started (registrations with repeated ids, rotations, retirement, tier
 * changes, revocation, a drain of one shard, reconcile, the sweep, clock ticks of seconds to days),
 * and settle points where everything started so far runs, its port calls interleaved by
 * fc.scheduler(), each operation perhaps crashed or failed at one call. Then the world is settled
 * (the model's quiesce) and checked; then the drain is finished, the grace and the retention pass,
 * and it is checked again. A failure prints the seed and path to replay
 * (KEYPLAN_MODEL_SEED=<seed> KEYPLAN_MODEL_PATH=<path>).
 */

const MINUTE_MS = 60_000;
const LEASE_MS = SETTINGS.leaseSeconds * 1000;
const START = new Date('2026-03-02T09:00:00.000Z');
const SHARD_IDS = ['a', 'b', 'c'] as const;

type ShardOperation =
  | Operation
  | { kind: 'drain'; shard: number; limit: number; graceDays: number | undefined; fault?: CallFault | undefined };

interface ShardWorldSpec {
  /** The high-water mark of each shard (2 or 3 shards; the first is the home shard). */
  marks: number[];
  customers: ModelCustomer[];
}

const shardsOf = (marks: readonly number[]): Shard[] =>
  marks.map((mark, index) => {
    const id = SHARD_IDS[index] ?? `s${index}`;
    return {
      id,
      plans: { free: `plan-free-${id}`, pro: `plan-pro-${id}` },
      baseUrl: `https://${id}.api.example.com`,
      highWaterKeys: mark,
      keyCeiling: 10,
      state: 'accepting',
    };
  });

/** A world of shards with these marks (the first is the home shard), and the model's settings for it. */
function aShardWorld(marks: readonly number[]): { world: InMemoryWorld; settings: ModelSettings } {
  const settings: ModelSettings = { ...SETTINGS, shards: shardsOf(marks) };
  const home = settings.shards[0]!;
  const world = new InMemoryWorld(
    { tierMap: home.plans, resumeAfterSeconds: SETTINGS.resumeAfterSeconds, foreignPlans: [FOREIGN_PLAN], shards: settings.shards },
    START,
  );
  return { world, settings };
}

// ---------------------------------------------------------------------------------------------
// One run: the world, what was started, and what became of it

interface ShardModel {
  /** The one shard a run drains (a second would leave nowhere to go in a world of two). */
  drained?: string | undefined;
}

class ShardRun {
  readonly world: InMemoryWorld;
  readonly settings: ModelSettings;
  readonly retireTimes: Date[] = [];
  readonly outcomes: OperationOutcome[] = [];
  readonly seeded: ApiKeyState[] = [];
  #pending: LaunchedOperation[] = [];
  #count = 0;

  constructor(
    readonly spec: ShardWorldSpec,
    readonly scheduler: Scheduler,
  ) {
    ({ world: this.world, settings: this.settings } = aShardWorld(spec.marks));
  }

  get customers() {
    return this.spec.customers;
  }

  shardId(index: number): string {
    return this.settings.shards[index % this.settings.shards.length]!.id;
  }

  /** Customers as they start, made by the real use cases without faults; keys keyplan must not touch. */
  async prepare(): Promise<void> {
    const { world } = this;
    const deps = depsOf(directPorts(world), this.settings);
    // Another stage's key, named as this stage names c1's first registration, in the home shard;
    // another tool's key (another prefix, no stage tag) in the last. Both count against the marks
    // once a reconcile has taken the shards' inventory.
    this.seeded.push(
      world.seedApiKey({
        name: keyNameFor(PREFIX, 'c1-r0'),
        tags: { 'keyplan:managed': 'true', 'keyplan:stage': 'other', 'keyplan:customer': 'c1', 'keyplan:registration': 'c1-r0' },
        customerId: 'c1',
        usagePlanId: FOREIGN_PLAN,
        shard: this.shardId(0),
      }),
    );
    this.seeded.push(
      world.seedApiKey({
        name: keyNameFor('kp-other', 'c2-r0'),
        tags: { 'keyplan:managed': 'true', 'keyplan:customer': 'c2', 'keyplan:registration': 'c2-r0' },
        customerId: 'c2',
        shard: this.shardId(this.settings.shards.length - 1),
      }),
    );
    for (const customer of this.customers) {
      if (customer.start === 'none') continue;
      try {
        await provisionKey(
          {
            registrationId: `${customer.id}-r0`,
            request: { customerId: customer.id, email: emailOf(customer.id), tier: customer.tier },
            now: world.clock(),
          },
          deps.provisioning,
        );
      } catch (error) {
        // Every shard at its mark already: the customer starts unregistered.
        if (error instanceof NoShardCapacityError) continue;
        throw error;
      }
      world.advance(MINUTE_MS);
      if (customer.start === 'rotated') {
        const [key] = await deps.rotation.keyStore.keysOf(customer.id);
        if (key) await rotateKey(key, { now: world.clock(), graceDays: SETTINGS.graceDays }, deps.rotation);
      }
      if (customer.start === 'revoked') await revokeCustomer({ customerId: customer.id, now: world.clock() }, deps.revocation);
    }
    world.advance(10 * MINUTE_MS);
    world.note('--- setup done ---');
  }

  /** Starts the operation; it runs at the next settle, interleaved with everything started with it. */
  launch(operation: ShardOperation): void {
    const label = this.label(operation, `${++this.#count}`);
    this.#pending.push(
      launchOperation(label, operation.kind === 'tick' ? operation.ms : undefined, {
        world: this.world,
        scheduler: this.scheduler,
        fault: 'fault' in operation ? operation.fault : undefined,
        perform: operation.kind === 'tick' ? undefined : (ports: WorldPorts) => this.#perform(operation, ports),
      }),
    );
  }

  async settle(): Promise<void> {
    const launched = this.#pending;
    this.#pending = [];
    this.world.note(`--- settle ${launched.length} ---`);
    this.outcomes.push(...(await settleOperations(this.scheduler, launched)));
  }

  label(operation: ShardOperation, id: string): string {
    if (operation.kind !== 'drain') return labelOf(operation, id, this);
    const fault = operation.fault ? ` [${operation.fault.kind} @${operation.fault.method ? `${operation.fault.method} #${operation.fault.call}` : `call ${operation.fault.call}`}]` : '';
    return `#${id} drain ${this.shardId(operation.shard)} limit ${operation.limit} grace ${operation.graceDays ?? 'default'}${fault}`;
  }

  async #perform(operation: Exclude<ShardOperation, { kind: 'tick' }>, ports: WorldPorts): Promise<void> {
    const deps = depsOf(ports, this.settings);
    const now = ports.clock();
    switch (operation.kind) {
      case 'drain':
        await drainShard(this.shardId(operation.shard), { now, limit: operation.limit, graceDays: operation.graceDays }, deps.drain!);
        return;
      case 'rotate-due':
        // The rotation schedule's run: due keys, then a step of every shard being drained.
        await runScheduledRotation(new Date(now.getTime() + operation.scheduleOffsetMs), 10, deps.drain!);
        return;
      default:
        await perform(operation, this.world, ports, this, this.retireTimes, this.settings);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

class Launch implements fc.AsyncCommand<ShardModel, ShardRun> {
  constructor(
    readonly operation: ShardOperation,
    readonly shardCount: number,
  ) {}

  check(model: Readonly<ShardModel>): boolean {
    if (this.operation.kind !== 'drain') return true;
    const shard = SHARD_IDS[this.operation.shard % this.shardCount];
    return model.drained === undefined || model.drained === shard;
  }

  async run(model: ShardModel, run: ShardRun): Promise<void> {
    if (this.operation.kind === 'drain') model.drained = run.shardId(this.operation.shard);
    run.launch(this.operation);
  }

  toString(): string {
    const { operation } = this;
    return `launch(${JSON.stringify(operation)})`;
  }
}

class Settle implements fc.AsyncCommand<ShardModel, ShardRun> {
  check(): boolean {
    return true;
  }

  async run(_model: ShardModel, run: ShardRun): Promise<void> {
    await run.settle();
  }

  toString(): string {
    return 'settle';
  }
}

function commandArbitraries(customers: number, shardCount: number): fc.Arbitrary<fc.AsyncCommand<ShardModel, ShardRun>>[] {
  const customer = fc.integer({ min: 0, max: customers - 1 });
  const launch = (operation: fc.Arbitrary<ShardOperation>) => operation.map((op) => new Launch(op, shardCount));
  const on = customerOperationArbitraries(customer);
  return [
    launch(on.register),
    launch(customerOperationArbitraries(customer, fc.constant(false)).register),
    launch(
      fc.record({
        kind: fc.constant('rotate-due' as const),
        scheduleOffsetMs: fc.constantFrom(-MINUTE_MS * 30, 91 * DAY_MS),
        fault: faultArbitrary,
      }),
    ),
    launch(on.rotateCustomer),
    launch(on.retireDue),
    launch(on.changeTier),
    launch(on.revoke),
    launch(
      fc.record({
        kind: fc.constant('drain' as const),
        shard: fc.integer({ min: 0, max: shardCount - 1 }),
        limit: fc.constantFrom(1, 10),
        graceDays: fc.constantFrom<number | undefined>(undefined, undefined, 0),
        fault: faultArbitrary,
      }),
    ),
    launch(
      fc.record({
        kind: fc.constant('drain' as const),
        shard: fc.integer({ min: 0, max: shardCount - 1 }),
        limit: fc.constant(10),
        graceDays: fc.constant(undefined),
        fault: fc.constant(undefined),
      }),
    ),
    // Twice: the reconciler's deletes and the sweep's resumes are where a stale listing bites.
    launch(fc.record({ kind: fc.constant('reconcile' as const), fault: faultArbitrary })),
    launch(fc.record({ kind: fc.constant('reconcile' as const), fault: fc.constant(undefined) })),
    launch(fc.record({ kind: fc.constant('sweep' as const), fault: faultArbitrary })),
    launch(
      fc.record({
        kind: fc.constant('tick' as const),
        // Within a lease, past one, past the reconciler's age; past the grace and the retention.
        ms: fc.constantFrom(1_000, LEASE_MS + 1_000, (SETTINGS.minKeyAgeMinutes + 1) * MINUTE_MS, 8 * DAY_MS, 31 * DAY_MS),
      }),
    ),
    // A key made in this batch is old enough for the reconciler to judge before it is recorded.
    launch(fc.constant({ kind: 'tick' as const, ms: (SETTINGS.minKeyAgeMinutes + 1) * MINUTE_MS })),
    launch(fc.constant({ kind: 'tick' as const, ms: (SETTINGS.minKeyAgeMinutes + 1) * MINUTE_MS })),
    launch(fc.record({ kind: fc.constant('sweep' as const), fault: fc.constant(undefined) })),
    fc.constant(new Settle()),
    fc.constant(new Settle()),
  ];
}

const worldArbitrary: fc.Arbitrary<ShardWorldSpec> = fc.record({
  marks: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 3 }),
  customers: fc
    .array(fc.record({ start: fc.constantFrom<CustomerStart>('none', 'active', 'active', 'rotated', 'revoked'), tier: tierArbitrary }), {
      minLength: 2,
      maxLength: 4,
    })
    .map((starts) => starts.map((start, index) => ({ id: `c${index + 1}`, ...start }))),
});

const scenarioArbitrary = worldArbitrary.chain((spec) =>
  fc.record({
    spec: fc.constant(spec),
    commands: fc.commands(commandArbitraries(spec.customers.length, spec.marks.length), { maxCommands: 20, size: '+1' }),
  }),
);

// ---------------------------------------------------------------------------------------------
// Invariants

const TRACKED = new Set(['ACTIVE', 'RETIRING', 'DISABLED']);

/**
 * DESIGN §7's invariants, shard by shard, and §8's:
 * 1. A customer that is not revoked and ACTIVE has an enabled key; every enabled key of it is live
 *    in its list, lives in the shard its record names for it (the customer's shard, or for a key a
 *    move left behind, `keyShards`), and its item names the same shard; it is in exactly one plan:
 *    its tier's plan of that shard. At most one key is ACTIVE; every other enabled key is RETIRING
 *    within its grace (the retirement job ran at the clock).
 * 2. A revoked customer has no enabled key.
 * 3. Email: no key emailed to a customer who is not revoked is gone unless a later email sent it
 *    another key; the last one's keys are alive.
 * 4. After the reconcile: every key of this stage in any shard has a live record whose item names
 *    that shard, and the customer's list agrees; every tracked record's key exists in its shard.
 * 5. Each shard's count of placed keys is the number of this stage's keys it holds.
 * 6. Every claim placed its customer on a shard below its mark (its count and its inventory) that
 *    was accepting, never draining.
 * 7. A drain moves customers only into shards below their marks, steps at once included.
 * 8. Events are numbered 1..n per customer; the keys of other stages and tools are untouched.
 */
function shardViolations(run: ShardRun): string[] {
  const { world, settings } = run;
  const violations: string[] = [];
  const home = settings.shards[0]!.id;
  const isOwnKey = ownKeyFilter(PREFIX, STAGE);
  const ownKeys = [...world.apiKeys.values()].filter((key) =>
    isOwnKey({ id: key.id, name: key.name, createdAt: key.createdAt, tags: key.tags }),
  );
  const shardOfId = (id: string) => settings.shards.find((shard) => shard.id === id);

  for (const { id: customerId } of run.customers) {
    const profile = world.profiles.get(customerId);
    const status = profile?.status ?? 'no record';
    const enabled = ownKeys.filter((key) => key.tags['keyplan:customer'] === customerId && key.enabled);
    if (profile?.status === 'REVOKED') {
      for (const key of enabled) violations.push(`${customerId} is REVOKED but its key ${key.id} is enabled`);
    } else if (profile) {
      if (profile.status === 'ACTIVE' && enabled.length === 0) violations.push(`${customerId} is ACTIVE but has no enabled key`);
      const active = Object.entries(profile.keys).filter(([, state]) => state === 'ACTIVE');
      if (active.length > 1) violations.push(`${customerId}: ${active.length} ACTIVE keys [${active.map(([id]) => id).join(', ')}]`);
      for (const [keyId] of active) {
        const where = keyShardOf(profile, keyId) ?? home;
        if (where !== (profile.shard ?? home)) {
          violations.push(`${customerId}: its ACTIVE key ${keyId} is recorded in shard ${where}, the customer in ${profile.shard ?? home}`);
        }
      }
      for (const key of enabled) {
        const listed = profile.keys[key.id];
        const item = world.keyItems.get(customerId)?.get(key.id);
        const recorded = keyShardOf(profile, key.id) ?? home;
        const lives = world.keyShard.get(key.id);
        const where = `${customerId} (${status}, tier ${profile.tier}, shard ${profile.shard ?? home}): enabled key ${key.id} in shard ${lives}`;
        if (!isLive(listed)) violations.push(`${where} is ${listed ?? 'not'} in its list, not ACTIVE/RETIRING`);
        if (lives !== recorded) violations.push(`${where}, its record says shard ${recorded}`);
        if (item && (item.shard ?? home) !== lives) violations.push(`${where}, its item says shard ${item.shard ?? home}`);
        const shard = shardOfId(lives ?? '');
        const plan = shard ? planIn(shard, profile.tier) : undefined;
        const plans = world.plansOf(key.id);
        if (plans.length !== 1 || plans[0] !== plan) {
          violations.push(`${where} is in [${plans.join(', ')}], not exactly [${plan ?? 'its tier plan there'}]`);
        }
        if (listed === 'RETIRING' && item?.retireAt !== undefined && Date.parse(item.retireAt) <= world.now) {
          violations.push(`${where} is RETIRING past its grace (${item.retireAt}) and still enabled`);
        }
      }
    }

    if (profile?.status !== 'REVOKED') {
      const keyEmails = world.emails.filter((email) => email.to === emailOf(customerId) && email.keyValues.length > 0);
      keyEmails.forEach((email, index) => {
        for (const value of email.keyValues) {
          const keyId = world.keyValues.get(value) ?? '?';
          if (world.apiKeys.has(keyId)) continue;
          if (index === keyEmails.length - 1) {
            violations.push(`${customerId} (${status}): the key most recently emailed (${keyId}, the last of ${keyEmails.length}) no longer exists`);
          }
        }
      });
    }
  }

  for (const key of ownKeys) {
    const customerId = key.tags['keyplan:customer'] ?? '';
    const item = world.keyItems.get(customerId)?.get(key.id);
    const listed = world.profiles.get(customerId)?.keys[key.id];
    const lives = world.keyShard.get(key.id);
    if (!item || !TRACKED.has(item.state)) {
      violations.push(`after the reconcile, key ${key.id} of ${customerId} in shard ${lives} (${key.enabled ? 'enabled' : 'disabled'}) has ${item ? `a ${item.state} record` : 'no record'}`);
    } else if (listed !== item.state) {
      violations.push(`after the reconcile, key ${key.id} of ${customerId}: its item is ${item.state}, the customer's list says ${listed ?? 'nothing'}`);
    } else if ((item.shard ?? home) !== lives) {
      violations.push(`after the reconcile, key ${key.id} of ${customerId} lives in shard ${lives}, its item says ${item.shard ?? home}`);
    }
  }
  for (const item of world.allKeyItems()) {
    if (TRACKED.has(item.state) && world.shardOfKey(item.keyId) !== (item.shard ?? home)) {
      violations.push(`after the reconcile, the ${item.state} record of ${item.keyId} (${item.customerId}) names shard ${item.shard ?? home}, where the key is not`);
    }
  }

  for (const shard of settings.shards) {
    const placed = world.shardRecords.get(shard.id)?.placedKeys ?? 0;
    const held = ownKeys.filter((key) => world.keyShard.get(key.id) === shard.id).length;
    if (placed !== held) violations.push(`shard ${shard.id} counts ${placed} placed keys, it holds ${held}`);
  }
  for (const placement of world.placements) {
    const mark = shardOfId(placement.shardId)?.highWaterKeys ?? 0;
    const full = placement.placedBefore >= mark || (placement.inventoryBefore ?? 0) >= mark;
    if (!placement.checked || full || placement.stateBefore === 'draining') {
      violations.push(
        `${placement.registrationId} placed ${placement.customerId} on shard ${placement.shardId} ` +
          `(${placement.checked ? 'checked' : 'unchecked'}, ${placement.placedBefore} placed, inventory ${placement.inventoryBefore ?? '-'}, mark ${mark}, ${placement.stateBefore ?? 'accepting'})`,
      );
    }
  }

  // Every move, steps at once included: each reserves its target's room under the mark.
  for (const move of world.moves) {
    const mark = shardOfId(move.shardId)?.highWaterKeys ?? 0;
    if (move.placedBefore >= mark || (move.inventoryBefore ?? 0) >= mark) {
      violations.push(
        `a drain moved ${move.customerId} to shard ${move.shardId} at its mark (${move.placedBefore} placed, inventory ${move.inventoryBefore ?? '-'}, mark ${mark})`,
      );
    }
  }

  violations.push(...eventViolations(world));
  for (const seededKey of run.seeded) {
    if (world.touchedKeys.has(seededKey.id) || !world.apiKeys.get(seededKey.id)?.enabled) {
      violations.push(`key ${seededKey.id} of another stage or tool was touched`);
    }
  }
  return violations;
}

/** Counts of what the runs exercised, so that a change that stops them exploring shows. */
const explored = { runs: 0, drains: 0, drainsFinished: 0, moved: 0, movedAtOnce: 0, overflowed: 0, full: 0 };

/**
 * The drain's end: the grace and the retention pass (retired keys deleted, room made), the drain
 * goes on until no ACTIVE key is left in the shard, the grace and the retention pass again, and
 * the world is settled. Then a drained shard holds no key of this stage (its count is 0) and no
 * customer that is not revoked is placed there; a drain that could not finish had no room left.
 */
async function finishDrain(run: ShardRun): Promise<string[]> {
  const { world, settings } = run;
  const violations: string[] = [];
  const deps = depsOf(directPorts(world), settings);
  // Past every grace and retention: a rotation run ahead of the clock dated its keys' by its
  // schedule's time, so the clock goes to the latest step due, as often as steps follow.
  const passAll = async () => {
    for (let round = 0; round < 4; round++) {
      const due = world
        .allKeyItems()
        .filter((item) => item.due && item.due.type !== 'ROTATE' && item.due.type !== 'CLEANUP')
        .map((item) => Date.parse(item.due?.at ?? ''));
      if (due.length === 0) return;
      world.advance(Math.max(MINUTE_MS, Math.max(...due) - world.now + MINUTE_MS));
      await retireDueKeys(world.clock(), 50, deps.rotation);
    }
  };
  const drained = [...world.shardRecords.values()].find((record) => record.state === 'draining')?.shardId;
  await passAll();
  // A reconcile takes each shard's inventory anew: the deleted keys leave room.
  violations.push(...(await quiesce(world, [], settings)));
  let finished = drained === undefined;
  let stoppedWithRoom: string[] = [];
  if (drained !== undefined) {
    explored.drains++;
    for (let step = 0; step < 6 && !finished; step++) {
      // Every other shard at its mark: the drain waits for room (checked below).
      const progress = await drainShard(drained, { now: world.clock(), limit: 10 }, deps.drain!).catch((error: unknown) => {
        if (error instanceof ValidationError) return undefined;
        throw error;
      });
      explored.moved += progress?.moved ?? 0;
      finished = progress !== undefined && !progress.moreLeft;
      if (!progress || (progress.moved === 0 && !finished)) {
        const rows = await reportShards(settings.shards, world.registry);
        stoppedWithRoom = rows
          .filter((row) => row.shard !== drained && row.state === 'accepting')
          .map((row) => `${row.shard}: ${row.keys}/${row.highWaterKeys}`);
        break;
      }
      world.advance(LEASE_MS + 1_000);
    }
  }
  await passAll();
  violations.push(...(await quiesce(world, [], settings)));
  if (drained === undefined) return violations;
  if (finished) {
    explored.drainsFinished++;
    const left = [...world.apiKeys.values()].filter(
      (key) => world.keyShard.get(key.id) === drained && key.tags['keyplan:stage'] === STAGE,
    );
    for (const key of left) violations.push(`drained shard ${drained} still holds ${key.id} of ${key.tags['keyplan:customer']} (${key.enabled ? 'enabled' : 'disabled'})`);
    for (const profile of world.profiles.values()) {
      if (profile.shard === drained && (profile.status === 'ACTIVE' || profile.status === 'PENDING')) {
        violations.push(`${profile.customerId} (${profile.status}) is still placed on drained shard ${drained}`);
      }
    }
  } else if (stoppedWithRoom.length > 0) {
    violations.push(`the drain of ${drained} stopped with room in [${stoppedWithRoom.join(', ')}]`);
  }
  return violations;
}

async function runShardScenario(
  spec: ShardWorldSpec,
  commands: Iterable<fc.AsyncCommand<ShardModel, ShardRun>>,
  scheduler: Scheduler,
): Promise<{ run: ShardRun; violations: string[] }> {
  const run = new ShardRun(spec, scheduler);
  await run.prepare();
  await fc.asyncModelRun(() => ({ model: {}, real: run }), commands);
  await run.settle();
  const violations = run.outcomes
    .filter((outcome) => outcome.unexpected || outcome.result === 'running')
    .map((outcome) => (outcome.result === 'running' ? `${outcome.label}: never finished` : `${outcome.label}: threw ${outcome.result}`));
  run.world.note('--- quiesce ---');
  violations.push(...(await quiesce(run.world, run.retireTimes, run.settings)));
  violations.push(...shardViolations(run).map((line) => `after the operations: ${line}`));
  run.world.note('--- the drain finished, the grace and the retention past ---');
  violations.push(...(await finishDrain(run)));
  violations.push(...shardViolations(run).map((line) => `at the end: ${line}`));

  explored.runs++;
  if (run.outcomes.some((outcome) => outcome.result.startsWith('NoShardCapacityError'))) explored.full++;
  // A customer placed past the first shard of its order: that one was full (or draining).
  if (run.world.placements.some((p) => p.shardId !== placementOrder(run.settings.shards, p.customerId)[0]?.id)) explored.overflowed++;
  explored.movedAtOnce += run.world.trace.filter((line) => /^commit .* shard=/.test(line)).length;
  return { run, violations };
}

function report(spec: ShardWorldSpec, run: ShardRun, violations: string[]): string {
  return [
    'violations:',
    ...violations.map((line) => `  - ${line}`),
    `shards: ${run.settings.shards.map((shard) => `${shard.id} (mark ${shard.highWaterKeys})`).join(', ')}`,
    'customers at start:',
    ...spec.customers.map((customer) => `  ${customer.id}: ${customer.start} (${customer.tier})`),
    'operations (those between two settles run at once):',
    ...run.outcomes.map((outcome) => `  ${outcome.label} -> ${outcome.result}`),
    'trace:',
    ...run.world.trace.map((line) => `  ${line}`),
  ].join('\n');
}

const shardProperty = fc.asyncProperty(scenarioArbitrary, fc.scheduler(), async ({ spec, commands }, scheduler) => {
  const { run, violations } = await runShardScenario(spec, commands, scheduler);
  if (violations.length > 0) throw new Error(report(spec, run, violations));
});

function parameters(defaultRuns: number) {
  const seed = process.env.KEYPLAN_MODEL_SEED;
  const path = process.env.KEYPLAN_MODEL_PATH;
  const numRuns = Number(process.env.KEYPLAN_MODEL_RUNS ?? defaultRuns);
  return { numRuns, ...(seed ? { seed: Number(seed) } : {}), ...(seed && path ? { path, endOnFailure: true } : {}) };
}

describe('every operation on a customer, together, over shards (DESIGN §7, §8)', () => {
  it('keeps the invariants over 2,000 command sequences and interleavings, a drain among them', async () => {
    await fc.assert(shardProperty, parameters(2_000));
    // The runs explored what they are for: drains that moved customers and finished, full shards.
    expect(explored.drainsFinished).toBeGreaterThan(0);
    expect(explored.moved).toBeGreaterThan(0);
    expect(explored.overflowed).toBeGreaterThan(0);
  }, 120_000);
});

/** Cases kept apart from the property, each run in 200 orders of its calls. */
describe('cases, each in every order of its calls', () => {
  const register = (customer: number): ShardOperation => ({
    kind: 'register',
    customer,
    registration: 0,
    otherPayload: false,
    reactivate: false,
    mode: 'sync',
  });
  const cases: { name: string; spec: ShardWorldSpec; batches: ShardOperation[][] }[] = [
    {
      // The registration's lease runs out after its key was made; the sweep resumes it and records
      // the key while the reconciler, which listed the key before, is about to delete it as an orphan
      // (only its re-check under the lease keeps the key: the property finds this in about 1 run of
      // 900, this case at once).
      name: 'a reconcile running with the sweep keeps the key the sweep records for a stalled registration',
      spec: { marks: [2, 2], customers: [{ id: 'c1', start: 'none', tier: 'free' }] },
      batches: [
        [register(0), { kind: 'tick', ms: (SETTINGS.minKeyAgeMinutes + 1) * MINUTE_MS }],
        [{ kind: 'reconcile' }, { kind: 'sweep' }],
      ],
    },
    {
      // A drain's move at once with a tier change and a revocation of the same customer.
      name: 'a drain, a tier change and a revocation of one customer at once',
      spec: { marks: [3, 3], customers: [{ id: 'c1', start: 'rotated', tier: 'free' }, { id: 'c2', start: 'active', tier: 'pro' }] },
      batches: [
        [
          { kind: 'drain', shard: 0, limit: 10, graceDays: undefined },
          { kind: 'drain', shard: 1, limit: 10, graceDays: undefined },
          { kind: 'change-tier', customer: 0, tier: 'pro', eventOffsetMs: undefined },
          { kind: 'revoke', customer: 1 },
        ],
      ],
    },
  ];

  it.each(cases)('$name', async ({ spec, batches }) => {
    const commands = batches.flatMap((batch) => [...batch.map((operation) => new Launch(operation, spec.marks.length)), new Settle()]);
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (scheduler) => {
        const { run, violations } = await runShardScenario(spec, commands, scheduler);
        // The report (operations, outcomes, trace) is what a failure needs to be read.
        expect(violations.length > 0 ? report(spec, run, violations) : '').toBe('');
      }),
      { numRuns: 200 },
    );
  });
});

describe('a drain and the high-water mark', () => {
  /** Shard a (mark 2) holding c1 and c2; shard b (mark 1) empty, accepting. */
  async function twoCustomersOnA() {
    const { world, settings } = aShardWorld([2, 1]);
    const deps = depsOf(directPorts(world), settings);
    const dying = (fault: CallFault) => depsOf(operationPorts(world, 'dies', { fault }).ports, settings);
    // Both land on a: b is not accepting while they register.
    await world.registry.setState('b', 'draining', world.clock());
    for (const customerId of ['c1', 'c2']) {
      await provisionKey(
        { registrationId: `${customerId}-r0`, request: { customerId, email: emailOf(customerId), tier: 'free' }, now: world.clock() },
        deps.provisioning,
      );
    }
    await world.registry.setState('b', 'accepting', world.clock());
    world.advance(10 * MINUTE_MS);
    return { world, deps, dying, settings };
  }

  it('a step moves no more customers than the target has room for', async () => {
    const { world, deps } = await twoCustomersOnA();

    const progress = await drainShard('a', { now: world.clock(), limit: 10 }, deps.drain!);

    expect(progress).toMatchObject({ moved: 1, moreLeft: true, to: { b: 1 } });
    expect(world.shardRecord('b').placedKeys).toBe(1);
    expect(['c1', 'c2'].map((customerId) => world.profiles.get(customerId)?.shard).sort()).toEqual(['a', 'b']);
  });

  // Found by the model (seed -1640849005): a step read each target's room and counted its moves
  // at the commit, unconditioned. Two steps at once (the operator's `shards drain` and the
  // rotation schedule's continueDrains) overfilled the target. A move now reserves its room under
  // the mark before it makes anything there; a step that finds it taken tries another shard.
  it('two steps at once do not move more customers than the target has room for', async () => {
    const { world, deps } = await twoCustomersOnA();

    await Promise.all([
      drainShard('a', { now: world.clock(), limit: 2 }, deps.drain!),
      drainShard('a', { now: world.clock(), limit: 2 }, deps.drain!),
    ]);

    expect(world.shardRecord('b').placedKeys).toBe(1);
    // The customer that found no room was left as it was: free, its key ACTIVE in a.
    const stayed = ['c1', 'c2'].find((customerId) => world.profiles.get(customerId)?.shard !== 'b') ?? '';
    expect(world.profiles.get(stayed)).toMatchObject({ lease: undefined });
    expect(world.profiles.get(stayed)?.shard ?? 'a').toBe('a');
    expect(world.shardRecord('a').placedKeys).toBe(2);
  });

  it('keeps the place a move that died reserved, for the sweep that finishes it: counted once, and no second move into it', async () => {
    const { world, deps, dying, settings } = await twoCustomersOnA();
    // The first move dies once its successor exists in b; the second finds b's one place taken.
    // (A crashed call never settles: the step is left hanging, as a dead process would.)
    void drainShard('a', { now: world.clock(), limit: 1 }, dying({ method: 'gateway.ensureKey', call: 1, kind: 'crash-after' }).drain!);
    await new Promise((resolve) => setImmediate(resolve));
    expect(world.shardRecord('b').placedKeys).toBe(1);
    await expect(drainShard('a', { now: world.clock(), limit: 2 }, deps.drain!)).rejects.toThrow(ValidationError);

    world.advance(LEASE_MS + 1_000);
    await finishInterruptedOperations(world.clock(), 10, deps.finish);
    await quiesce(world, [], settings);

    expect(world.shardRecord('b').placedKeys).toBe(1);
    expect([...world.keyShard.values()].filter((shardId) => shardId === 'b')).toHaveLength(1);
    expect(['c1', 'c2'].filter((customerId) => world.profiles.get(customerId)?.shard === 'b')).toHaveLength(1);
  });
});

describe('the sharded fakes, as the adapters behave', () => {
  it("know a key only in its own shard's API Gateway: elsewhere it is not found, and a delete or disable there changes nothing", async () => {
    const { world } = aShardWorld([2, 2]);
    const key = await world.gateway.in('b').ensureKey({ name: 'kp-model-x', customerId: 'c1', description: '', tags: {} }, { lookupFirst: false });

    await world.gateway.in('a').deleteKey(key.id);
    await world.gateway.in('a').disableKey(key.id);
    const plannedElsewhere = world.gateway.in('a').addKeyToPlan('plan-free-a', key.id);
    const otherShardsPlan = world.gateway.in('b').addKeyToPlan('plan-free-a', key.id);

    await expect(plannedElsewhere).rejects.toThrow(/NotFoundException/);
    await expect(otherShardsPlan).rejects.toThrow(/NotFoundException/);
    expect(world.apiKeys.get(key.id)?.enabled).toBe(true);
    expect(await world.gateway.in('a').keyExists(key.id)).toBe(false);
    expect(await world.gateway.in('b').keyExists(key.id)).toBe(true);
  });

  it('place a claim only below the mark and while the shard accepts, and count it', async () => {
    const { world, settings } = aShardWorld([1, 1]);
    const deps = depsOf(directPorts(world), settings);
    const register = (customerId: string) =>
      provisionKey(
        { registrationId: `${customerId}-r0`, request: { customerId, email: emailOf(customerId), tier: 'free' }, now: world.clock() },
        deps.provisioning,
      );
    await world.registry.setState('b', 'draining', world.clock());

    await register('c1');
    const second = register('c2');

    await expect(second).rejects.toThrow(NoShardCapacityError);
    expect(world.profiles.get('c1')?.shard).toBe('a');
    expect(world.shardRecord('a').placedKeys).toBe(1);
    expect(world.shardRecord('b').placedKeys).toBe(0);
    expect(world.placements).toEqual([expect.objectContaining({ customerId: 'c1', shardId: 'a', placedBefore: 0, checked: true })]);
  });
});

describe('a sweep acting on what it listed before (found by the shard model)', () => {
  /** A customer c1 on shard a or b, its sweep deps, deps whose one call dies, and a sweep that lists stale. */
  async function aCustomer() {
    const { world, settings } = aShardWorld([3, 3]);
    const deps = depsOf(directPorts(world), settings);
    const dying = (fault: CallFault) => depsOf(operationPorts(world, 'dies', { fault }).ports, settings);
    await provisionKey(
      { registrationId: 'c1-r0', request: { customerId: 'c1', email: emailOf('c1'), tier: 'free' }, now: world.clock() },
      deps.provisioning,
    );
    const died = async (operation: Promise<unknown>) => {
      void operation;
      await new Promise((resolve) => setImmediate(resolve));
      world.advance(LEASE_MS + 1_000);
    };
    const staleSweep = (listed: Awaited<ReturnType<typeof world.ledger.findInterrupted>>) =>
      finishInterruptedOperations(world.clock(), 10, {
        ...deps.finish,
        ledger: Object.assign(Object.create(world.ledger) as typeof world.ledger, { findInterrupted: async () => listed }),
      });
    return { world, settings, deps, dying, died, staleSweep };
  }

  it('finishes the rotation that died holding the customer, not the tier change it listed', async () => {
    const { world, settings, deps, dying, died, staleSweep } = await aCustomer();
    // A tier change dies between its two plan calls; the sweep lists it, then is slow to act.
    await died(changeTier({ customerId: 'c1', tier: 'pro', requestId: 't1', now: world.clock() }, dying({ method: 'gateway.removeKeyFromPlan', call: 1, kind: 'crash-after' }).tierChange));
    const listed = await world.ledger.findInterrupted(world.clock(), 10);
    // Another sweep run finishes the tier change; then a rotation dies after emailing the successor.
    await finishInterruptedOperations(world.clock(), 10, deps.finish);
    await died(rotateCustomerKeys('c1', { now: world.clock() }, dying({ method: 'mailer.send', call: 1, kind: 'crash-after' }).rotation));

    await staleSweep(listed);
    await quiesce(world, [], settings);

    const emailed = world.emails.filter((email) => email.keyValues.length > 0).at(-1)?.keyValues[0] ?? '';
    const successor = world.keyValues.get(emailed) ?? '';
    expect(listed).toEqual([{ customerId: 'c1', owner: expect.any(String), intent: expect.objectContaining({ operation: 'change-tier' }) }]);
    expect(world.apiKeys.has(successor)).toBe(true);
    expect(world.profiles.get('c1')).toMatchObject({ emailedKeyId: successor, keys: { [successor]: 'ACTIVE' } });
  });

  it('leaves alone a lease that changed since it was listed, so a sweep that dies on taking it writes no stale intent', async () => {
    const { world, settings, deps, dying, died, staleSweep } = await aCustomer();
    await died(changeTier({ customerId: 'c1', tier: 'pro', requestId: 't1', now: world.clock() }, dying({ method: 'gateway.removeKeyFromPlan', call: 1, kind: 'crash-after' }).tierChange));
    const listed = await world.ledger.findInterrupted(world.clock(), 10);
    await finishInterruptedOperations(world.clock(), 10, deps.finish);
    await died(rotateCustomerKeys('c1', { now: world.clock() }, dying({ method: 'mailer.send', call: 1, kind: 'crash-after' }).rotation));
    const rotation = world.profiles.get('c1')?.lease;

    // The slow sweep dies right after its take-over write, before it could look at what it took.
    const crash = { method: 'ledger.acquire', call: 1, kind: 'crash-after' } as const;
    await died(
      finishInterruptedOperations(world.clock(), 10, {
        ...dying(crash).finish,
        ledger: Object.assign(Object.create(operationPorts(world, 'sweep', { fault: crash }).ports.ledger) as typeof world.ledger, {
          findInterrupted: async () => listed,
        }),
      }),
    );
    // The rotation's lease is untouched: its owner, and the intent the next sweep finishes.
    expect(world.profiles.get('c1')?.lease).toMatchObject({ owner: rotation?.owner, operation: 'rotate' });

    await staleSweep(await world.ledger.findInterrupted(world.clock(), 10));
    await quiesce(world, [], settings);

    const emailed = world.emails.filter((email) => email.keyValues.length > 0).at(-1)?.keyValues[0] ?? '';
    const successor = world.keyValues.get(emailed) ?? '';
    expect(world.apiKeys.has(successor)).toBe(true);
    expect(world.profiles.get('c1')).toMatchObject({ emailedKeyId: successor, keys: { [successor]: 'ACTIVE' } });
  });


  it('does not revoke a re-activation for a sweep that listed a revocation and died holding the customer', async () => {
    const { world, settings, deps, dying, died, staleSweep } = await aCustomer();
    await revokeCustomer({ customerId: 'c1', now: world.clock() }, deps.revocation);
    const listed = [{ customerId: 'c1', intent: { operation: 'revoke' as const } }];
    await died(
      provisionKey(
        { registrationId: 'c1-r1', request: { customerId: 'c1', email: emailOf('c1'), tier: 'free', reactivate: true }, now: world.clock() },
        dying({ method: 'gateway.ensureKey', call: 1, kind: 'crash-before' }).provisioning,
      ),
    );
    // A sweep that listed the revocation takes the re-activating customer and dies before it lets
    // go: its lease, must-finish, says revoke.
    await died(
      finishInterruptedOperations(world.clock(), 10, {
        ...dying({ method: 'ledger.release', call: 1, kind: 'crash-before' }).finish,
        ledger: Object.assign(Object.create(operationPorts(world, 'sweep', { fault: { method: 'ledger.release', call: 1, kind: 'crash-before' } }).ports.ledger) as typeof world.ledger, {
          findInterrupted: async () => listed,
        }),
      }),
    );

    await staleSweep(await world.ledger.findInterrupted(world.clock(), 10));
    await quiesce(world, [], settings);

    expect(world.registrations.get('c1-r1')?.state).toBe('ACTIVE');
    expect(world.profiles.get('c1')?.status).toBe('ACTIVE');
  });

  it("does not take over a re-activation's registration with the intent of a revocation it listed", async () => {
    const { world, settings, deps, dying, died, staleSweep } = await aCustomer();
    // A revocation dies after disabling the key: the sweep lists it, then is slow to act on it.
    await died(revokeCustomer({ customerId: 'c1', now: world.clock() }, dying({ method: 'gateway.disableKey', call: 1, kind: 'crash-after' }).revocation));
    const listed = await world.ledger.findInterrupted(world.clock(), 10);
    // Meanwhile another sweep run finishes the revocation, and the customer asks to come back: the
    // re-activation's attempt claims the customer (counted on its shard) and dies before its key.
    await finishInterruptedOperations(world.clock(), 10, deps.finish);
    await died(
      provisionKey(
        { registrationId: 'c1-r1', request: { customerId: 'c1', email: emailOf('c1'), tier: 'free', reactivate: true }, now: world.clock() },
        dying({ method: 'gateway.ensureKey', call: 1, kind: 'crash-before' }).provisioning,
      ),
    );

    await staleSweep(listed);
    await quiesce(world, [], settings);

    expect(listed).toEqual([{ customerId: 'c1', owner: expect.any(String), intent: expect.objectContaining({ operation: 'revoke' }) }]);
    expect(world.registrations.get('c1-r1')?.state).toBe('ACTIVE');
    expect(world.profiles.get('c1')?.status).toBe('ACTIVE');
    const shard = world.profiles.get('c1')?.shard ?? '';
    expect(world.shardRecord(shard).placedKeys).toBe([...world.keyShard.values()].filter((id) => id === shard).length);
  });
});
