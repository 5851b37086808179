import type { CustomerKey } from '../../shared/core/model';
import { TransientAwsError } from '../../shared/errors';
import { enqueueRegistration } from '../../shared/provisioning/enqueue-registration';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { finishInterruptedOperations, type FinishRunReport } from '../../shared/sweep/finish-interrupted';
import { depsOf, SETTINGS, START, TIER_MAP } from './in-memory-model';
import { directPorts, type WorldPorts } from './in-memory-scheduling';
import { type ApiKeyState, InMemoryWorld, type KeyItem, type ProfileItem } from './in-memory-world';

/*
 * Small helpers for the use cases' unit tests over the in-memory world: a world with registered
 * customers, ports that record their calls and may have one method replaced (derived from the
 * fake, the fake itself untouched), a crash (a call that never settles) and a gate (a call held
 * until the test lets it go), and readers of the world's state.
 */

export const MINUTE_MS = 60_000;
export const LEASE_MS = SETTINGS.leaseSeconds * 1000;
/** The model's settings, with a sweep period unlike the lease so a Retry-After tells which it is. */
export const UNIT_SETTINGS = { ...SETTINGS, sweepSeconds: 300 } as const;

export const aWorld = (): InMemoryWorld =>
  new InMemoryWorld({ tierMap: TIER_MAP, resumeAfterSeconds: SETTINGS.resumeAfterSeconds }, START);

/** Every use case's deps over `ports` (the world's own by default), with UNIT_SETTINGS. */
export function useCases(ports: WorldPorts) {
  const deps = depsOf(ports);
  const settings = UNIT_SETTINGS;
  return {
    provisioning: { ...deps.provisioning, settings },
    enqueue: { ...deps.enqueue, settings },
    rotation: { ...deps.rotation, settings },
    tierChange: { ...deps.tierChange, settings },
    revocation: { ...deps.revocation, settings },
    finish: { ...deps.finish, settings },
  };
}

type PortName = Exclude<keyof WorldPorts, 'clock' | 'registry'>;
/** Replacements for some methods of some ports: `{ gateway: { addKeyToPlan: async () => ... } }`. */
export type PortOverrides = { [P in PortName]?: Partial<WorldPorts[P]> };

/**
 * The world's ports with some methods replaced, every call recorded (`gateway.addKeyToPlan`, ...)
 * in order. A replaced port is an object derived from the fake (Object.create): the other
 * methods are the fake's, and the world's own ports stay as they are.
 */
export function recordingPorts(world: InMemoryWorld, overrides: PortOverrides = {}): { ports: WorldPorts; calls: string[] } {
  const calls: string[] = [];
  const direct = directPorts(world);
  const derive = <P extends PortName>(name: P): WorldPorts[P] => {
    const replaced = Object.entries(overrides[name] ?? {}).map(([method, value]) => [method, { value, writable: true, configurable: true }] as const);
    const port = Object.create(direct[name], Object.fromEntries(replaced)) as WorldPorts[P];
    return new Proxy(port, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || typeof property !== 'string') return value;
        // The world is one shard: the shard's gateway is this recording one, and asking is no call.
        if (property === 'in') return () => receiver;
        // The fake's own methods run on the fake itself: some use its private (#) members.
        const self = Object.hasOwn(target, property) ? target : direct[name];
        return (...args: unknown[]) => {
          calls.push(`${name}.${property}`);
          return (value as (...a: unknown[]) => unknown).apply(self, args);
        };
      },
    });
  };
  const ports: WorldPorts = {
    gateway: derive('gateway'),
    ledger: derive('ledger'),
    registrations: derive('registrations'),
    keyTable: derive('keyTable'),
    mailer: derive('mailer'),
    queue: derive('queue'),
    clock: world.clock,
  };
  return { ports, calls };
}

/** What a throttled AWS call throws once the SDK gave up: certainly not carried out. */
export const throttled = (call: string) => new TransientAwsError(`${call} throttled (simulated)`, 1, { notApplied: true });

/** A place where the Lambda dies: `die()` never settles; `reached` resolves once it did. */
export function aCrash() {
  let reached!: () => void;
  const promise = new Promise<void>((resolve) => {
    reached = resolve;
  });
  return {
    reached: promise,
    die: <T>(): Promise<T> => {
      reached();
      return new Promise<T>(() => undefined);
    },
  };
}

/** A call held until the test opens the gate: `reached` once the call waits there. */
export function aGate() {
  let reached!: () => void;
  let open!: () => void;
  const reachedPromise = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    reached: reachedPromise,
    open: () => open(),
    pass: async (): Promise<void> => {
      reached();
      await opened;
    },
  };
}

const emailOf = (customerId: string) => `${customerId}@example.com`;

/** A customer registered by the real saga (one ACTIVE key, emailed), a minute in the past. */
export async function aRegisteredCustomer(world: InMemoryWorld, customerId = 'c1', tier: keyof typeof TIER_MAP = 'free'): Promise<CustomerKey> {
  await provisionKey(
    { registrationId: `${customerId}-r0`, request: { customerId, email: emailOf(customerId), tier }, now: world.clock() },
    useCases(directPorts(world)).provisioning,
  );
  world.advance(MINUTE_MS);
  return theOnlyKeyOf(world, customerId);
}

/** A customer registered through the queue whose worker has not started: PENDING, no lease. */
export async function aQueuedCustomer(world: InMemoryWorld, customerId = 'c1'): Promise<void> {
  await enqueueRegistration(
    { registrationId: `${customerId}-r0`, request: { customerId, email: emailOf(customerId), tier: 'free' }, now: world.clock() },
    useCases(directPorts(world)).enqueue,
  );
}

export async function theOnlyKeyOf(world: InMemoryWorld, customerId: string): Promise<CustomerKey> {
  const keys = await world.keyTable.keysOf(customerId);
  if (keys.length !== 1 || !keys[0]) throw new Error(`setup: ${customerId} has ${keys.length} keys, not one`);
  return keys[0];
}

/** The sweep's second half, as its schedule runs it: at the clock, with the world's own ports unless given others. */
export function sweep(world: InMemoryWorld, ports: WorldPorts = directPorts(world)): Promise<FinishRunReport> {
  return finishInterruptedOperations(world.clock(), 10, useCases(ports).finish);
}

/** Moves the clock past every lease taken until now. */
export const pastTheLease = (world: InMemoryWorld) => world.advance(LEASE_MS + 1_000);

// Readers of the world's state -----------------------------------------------------------------

export function profileOf(world: InMemoryWorld, customerId: string): ProfileItem {
  const profile = world.profiles.get(customerId);
  if (!profile) throw new Error(`no profile for ${customerId}`);
  return profile;
}

export function itemOf(world: InMemoryWorld, customerId: string, keyId: string): KeyItem | undefined {
  return world.keyItems.get(customerId)?.get(keyId);
}

/** The keys API Gateway holds that a rotation of `keyId` made (tagged as its replacement). */
export const successorsOf = (world: InMemoryWorld, keyId: string): ApiKeyState[] =>
  [...world.apiKeys.values()].filter((key) => key.tags['keyplan:replaces'] === keyId);

/** The emails that carry the value of `keyId` (deleted keys' values are remembered too). */
export function emailsCarrying(world: InMemoryWorld, keyId: string) {
  const value = [...world.keyValues].find(([, id]) => id === keyId)?.[0];
  return world.emails.filter((email) => value !== undefined && email.keyValues.includes(value));
}

/** The calls that change something: reads (the plan's limits, which the adapter caches) left out. */
export const writesAmong = (calls: readonly string[]) =>
  calls.filter((call) => !['gateway.getPlanLimits', 'gateway.getKeyValue', 'keyTable.keysOf', 'keyTable.findDue', 'keyTable.countDue'].includes(call));
