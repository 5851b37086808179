import type { Scheduler } from 'fast-check';
import { AssociationRejectedError, TransientAwsError } from '../../shared/errors';
import { FakeAwsError, type InMemoryWorld } from './in-memory-world';

/**
 * What happens to one port call of an operation: the `call`-th (counted from 1) of all its calls,
 * or, with `method` (`gateway.addKeyToPlan`, `mailer.send`, ...), of its calls of that method:
 * - `crash-before`: the Lambda dies before the request leaves; nothing happens, nothing returns.
 * - `crash-after`: the request takes effect and the Lambda dies before it reads the answer.
 * Neither settles: no catch or finally of the use case runs, as in a Lambda that timed out.
 * - `fail`: AWS keeps throttling after the SDK's retries (for SES: a send error): nothing happens
 *   and the call throws TransientAwsError, `notApplied` as the adapters say of a throttled call.
 * - `fail-after`: the call takes effect, then its answer is lost (a 5xx, a dropped connection) and
 *   it throws TransientAwsError that cannot tell whether it was applied.
 * - `refuse`: API Gateway refuses for good: AssociationRejectedError from CreateUsagePlanKey, a
 *   BadRequestException from its other calls (SES: a rejected message); elsewhere as `fail`.
 */
export interface CallFault {
  call: number;
  method?: string | undefined;
  kind: 'crash-before' | 'crash-after' | 'fail' | 'fail-after' | 'refuse';
}

/** The ports one operation uses: every fake of the world, each call a step of its own. */
export interface WorldPorts {
  gateway: InMemoryWorld['gateway'];
  ledger: InMemoryWorld['ledger'];
  registrations: InMemoryWorld['registrationTable'];
  keyTable: InMemoryWorld['keyTable'];
  mailer: InMemoryWorld['mailer'];
  queue: InMemoryWorld['queue'];
  /** The shard items (a drain's reads and writes); optional: only the shard model uses them. */
  registry?: InMemoryWorld['registry'] | undefined;
  clock: () => Date;
}

export interface OperationHandle {
  ports: WorldPorts;
  /** Whether the operation died (its promise never settles). */
  crashed(): boolean;
}

const NEVER: Promise<never> = new Promise(() => undefined);
/** Methods that answer page by page: every page is a call of its own. */
const PAGED = new Set(['listKeyPages', 'trackedKeyPages']);
/** A use case that loops without end is a bug, not a long run. */
const MAX_CALLS_PER_OPERATION = 2_000;

function injectedError(name: string, kind: 'fail' | 'fail-after' | 'refuse'): Error {
  if (name.startsWith('mailer.')) return new Error('simulated SES failure (MessageRejected)');
  if (kind === 'refuse' && name === 'gateway.addKeyToPlan') {
    return new AssociationRejectedError('simulated: API Gateway rejected the association (BadRequestException)');
  }
  if (kind === 'refuse' && name.startsWith('gateway.')) return new FakeAwsError('BadRequestException', `simulated: ${name} refused`);
  return kind === 'fail-after'
    ? new TransientAwsError(`${name} failed: simulated 5xx after it took effect`, 1)
    : new TransientAwsError(`${name} failed: simulated throttling`, 1, { notApplied: true });
}

/** The world's ports, called straight: for setting a world up and for the crash-free quiesce. */
export function directPorts(world: InMemoryWorld): WorldPorts {
  return {
    gateway: world.gateway,
    ledger: world.ledger,
    registrations: world.registrationTable,
    keyTable: world.keyTable,
    mailer: world.mailer,
    queue: world.queue,
    registry: world.registry,
    clock: world.clock,
  };
}

/**
 * The world's ports for one operation, each call an interleaving point: the request waits for the
 * scheduler to let it through (`s.schedule`), then changes the world at once and answers. So every
 * order of the operations' calls can happen, and a fault can hit the operation's `fault.call`-th
 * call. Without a scheduler the calls go straight through (faults still apply).
 */
export function operationPorts(
  world: InMemoryWorld,
  label: string,
  options: { scheduler?: Scheduler | undefined; fault?: CallFault | undefined },
): OperationHandle {
  let count = 0;
  const countByMethod = new Map<string, number>();
  let crashed = false;
  const { scheduler, fault } = options;

  async function step<T>(name: string, call: () => Promise<T>): Promise<T> {
    const n = ++count;
    if (n > MAX_CALLS_PER_OPERATION) throw new Error(`${label}: more than ${MAX_CALLS_PER_OPERATION} port calls`);
    const nOfMethod = (countByMethod.get(name) ?? 0) + 1;
    countByMethod.set(name, nOfMethod);
    const hit = fault && (fault.method === undefined ? fault.call === n : fault.method === name && fault.call === nOfMethod);
    const here = hit ? fault.kind : undefined;
    if (here === 'crash-before') {
      crashed = true;
      world.note(`${label}: crashed before ${name}`);
      return NEVER;
    }
    if (scheduler) await scheduler.schedule(Promise.resolve(), `${label} ${name}`);
    if (here === 'fail' || here === 'refuse') {
      world.note(`${label}: ${name} ${here === 'fail' ? 'failed' : 'refused'} (injected)`);
      throw injectedError(name, here);
    }
    if (here === 'fail-after') {
      await call().catch(() => undefined);
      world.note(`${label}: ${name} took effect, then failed (injected)`);
      throw injectedError(name, 'fail-after');
    }
    if (here === 'crash-after') {
      crashed = true;
      // The call takes effect; its answer, or its error, is never read.
      await call().catch(() => undefined);
      world.note(`${label}: crashed after ${name}`);
      return NEVER;
    }
    return call();
  }

  // A sharded world: each shard's gateway wrapped once, its calls steps of this operation too.
  const shardPorts = new Map<string, unknown>();
  function wrap<T extends object>(portName: string, port: T): T {
    return new Proxy(port, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || typeof property !== 'string') return value;
        // One shard: the shard's gateway is this scheduled one. Several: that shard's, scheduled
        // alike (named as the gateway's, so a fault finds its calls). Asking is no step.
        if (property === 'in') {
          if (!world.settings.shards) return () => receiver;
          return (shardId?: string) => {
            const scoped = (value as (id?: string) => object).call(target, shardId);
            const key = (scoped as { shardId?: string }).shardId ?? '';
            if (!shardPorts.has(key)) shardPorts.set(key, wrap(portName, scoped));
            return shardPorts.get(key);
          };
        }
        const method = value as (...args: unknown[]) => unknown;
        const name = `${portName}.${property}`;
        if (PAGED.has(property)) {
          return (...args: unknown[]) => pages(name, () => method.apply(target, args) as AsyncIterable<unknown>);
        }
        return (...args: unknown[]) => step(name, () => method.apply(target, args) as Promise<unknown>);
      },
    });
  }

  async function* pages(name: string, open: () => AsyncIterable<unknown>): AsyncIterable<unknown> {
    const iterator = open()[Symbol.asyncIterator]();
    for (;;) {
      const page = await step(name, () => iterator.next());
      if (page.done) return;
      yield page.value;
    }
  }

  const ports: WorldPorts = {
    gateway: wrap('gateway', world.gateway),
    ledger: wrap('ledger', world.ledger),
    registrations: wrap('registrations', world.registrationTable),
    keyTable: wrap('keyTable', world.keyTable),
    mailer: wrap('mailer', world.mailer),
    queue: wrap('queue', world.queue),
    registry: wrap('registry', world.registry),
    clock: world.clock,
  };
  return { ports, crashed: () => crashed };
}
