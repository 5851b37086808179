import type { Services } from '../../cli/services';
import type { EventHistory } from '../../shared/audit/ports';
import type { DueEntry, DueIndex, FailedRegistration, QueueDepths } from '../../shared/console/ports';
import { countKeys } from '../../shared/console/key-counts';
import { previewStalled } from '../../shared/console/overview';
import type { RecordedEvent } from '../../shared/core/events';
import type { DueType } from '../../shared/core/model';
import type { KeyGateway } from '../../shared/core/ports';
import { oneShard } from '../../shared/core/shards';
import type { ConsoleDeps } from '../../shared/wiring/console';
import { useCases } from './in-memory-fixtures';
import { SHARDS } from './in-memory-model';
import { directPorts } from './in-memory-scheduling';
import type { InMemoryWorld } from './in-memory-world';

/** What the console reads besides the world: queues, failures, events and usage, as a test sets them. */
export interface ConsoleExtras {
  queues?: Awaited<ReturnType<QueueDepths['depths']>>;
  failures?: FailedRegistration[];
  events?: RecordedEvent[];
  usage?: KeyGateway['getUsage'];
}

/** The console's read model over the in-memory world (its profiles, key items, registrations, shard items). */
export function consoleOverWorld(world: InMemoryWorld, extras: ConsoleExtras = {}): ConsoleDeps {
  const history: EventHistory = {
    page: async (customerId, { limit }) => {
      const events = (extras.events ?? []).filter((e) => e.customerId === customerId).sort((a, b) => b.sequence - a.sequence);
      return { events: events.slice(0, limit), next: events.length > limit ? events[limit - 1]!.sequence : undefined };
    },
    knows: async (customerId) => world.profiles.has(customerId),
  };
  const failures = extras.failures ?? [];
  const getUsage: KeyGateway['getUsage'] = extras.usage ?? (() => world.gateway.getUsage());
  const dueIndex: DueIndex = {
    async *entries(dueType: DueType): AsyncIterable<DueEntry> {
      const items = [...world.keyItems.values()].flatMap((keys) => [...keys.values()]).filter((item) => item.due?.type === dueType);
      for (const item of items.sort((a, b) => a.due!.at.localeCompare(b.due!.at))) yield { dueAt: item.due!.at, retireAt: item.retireAt, shard: item.shard };
    },
  };
  return {
    // Read live: the wiring keeps these a while, the world is small.
    keyCounts: () => countKeys(world.clock(), dueIndex, SHARDS[0].id),
    recentFailures: async () => ({ failures: failures.slice(0, 20), total: failures.length }),
    sweepPreview: () => previewStalled(world.clock(), { stalled: world.registrationTable, ledger: world.ledger, clock: world.clock }),
    refresh: { prefetch: () => undefined, afterAction: () => undefined },
    profiles: {
      async profileOf(customerId) {
        const profile = world.profiles.get(customerId);
        if (!profile) return undefined;
        return {
          customerId,
          email: profile.email,
          tier: profile.tier,
          status: profile.status,
          registrationId: profile.registrationId,
          shard: profile.shard,
          emailedKeyId: profile.emailedKeyId,
          createdAt: profile.createdAt,
          updatedAt: profile.updatedAt,
          tierHistory: profile.tierHistory.map((change) => ({ from: change.from, to: change.to, requestId: change.cause, at: change.at })),
          keys: [...(world.keyItems.get(customerId)?.values() ?? [])].map((item) => ({ ...item })),
        };
      },
    },
    registrations: world.registrationTable,
    queues: { depths: async () => extras.queues ?? { queue: 0, dlq: 0, queues: 1 } },
    registry: world.registry,
    usage: { keys: oneShard({ getUsage }), keyStore: world.keyTable },
    history: { history },
    settings: { shards: SHARDS },
  };
}

/** The CLI's services over the world: the console's reads, and the use cases its actions run. */
export function servicesOverWorld(world: InMemoryWorld, extras: ConsoleExtras = {}): Services {
  const deps = useCases(directPorts(world));
  return {
    console: () => consoleOverWorld(world, extras),
    rotation: () => deps.rotation,
    customers: () => ({ ...deps.tierChange, ...deps.revocation, settings: { ...deps.tierChange.settings, ...deps.revocation.settings } }),
    provisioning: () => deps.provisioning,
    close: () => undefined,
  } as Partial<Services> as Services;
}
