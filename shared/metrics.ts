import { lineWriter } from './logger';

/**
 * Counts, written as CloudWatch embedded-metric-format (EMF) lines to the function's log at the end
 * of each invocation (observe() flushes them), so metrics cost no API call. The same lines
 * Powertools Metrics wrote, without its 12.5 KiB: every metric a Count, one dimension `service`.
 */
export interface Metrics {
  /** With a shard, also under the dimensions service and shard (each shard's own series). */
  count(name: string, value: number, shard?: string): void;
  /** The ColdStart count, on a line of its own with the function's name as a second dimension. */
  coldStart(functionName: string): void;
  /** Writes what was counted since the last flush (nothing when nothing was) and forgets it. */
  flush(): void;
}

/** CloudWatch takes at most 100 metrics per EMF document, and 100 values per metric. */
const EMF_LIMIT = 100;

/**
 * Metrics over an environment: the namespace is POWERTOOLS_METRICS_NAMESPACE; the `service`
 * dimension POWERTOOLS_SERVICE_NAME (the deploy sets it to <service>-<stage>, which keeps the
 * stages apart: the alarms filter on it). POWERTOOLS_METRICS_DISABLED (or, when that is unset,
 * POWERTOOLS_DEV) writes nothing. Read once, when they are created.
 */
export function createMetrics(env: NodeJS.ProcessEnv = process.env, write = lineWriter(env)): Metrics {
  const namespace = env.POWERTOOLS_METRICS_NAMESPACE || 'keyplan';
  const service = env.POWERTOOLS_SERVICE_NAME || 'keyplan';
  const disabled = /^(1|y|yes|t|true|on)$/i.test((env.POWERTOOLS_METRICS_DISABLED ?? env.POWERTOOLS_DEV ?? '').trim());
  // Name -> the values counted under it since the last flush, in order: EMF takes a list, so a
  // Maximum or a SampleCount sees each count, not their sum.
  let counted = new Map<string, number[]>();
  let byShard = new Map<string, Map<string, number[]>>();
  const add = (into: Map<string, number[]>, name: string, value: number) => {
    const values = into.get(name);
    if (values) values.push(value);
    else into.set(name, [value]);
  };

  const emit = (values: Map<string, number[]>, dimensions: Record<string, string>) => {
    while (values.size > 0) {
      const definitions: { Name: string; Unit: 'Count' }[] = [];
      const line: Record<string, unknown> = {
        _aws: {
          Timestamp: Date.now(),
          CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [Object.keys(dimensions)], Metrics: definitions }],
        },
        ...dimensions,
      };
      for (const [name, all] of values) {
        if (definitions.length === EMF_LIMIT) break;
        const taken = all.splice(0, EMF_LIMIT);
        definitions.push({ Name: name, Unit: 'Count' });
        line[name] = taken.length === 1 ? taken[0] : taken;
        if (all.length === 0) values.delete(name);
      }
      if (!disabled) write(JSON.stringify(line));
    }
  };

  return {
    count(name, value, shard) {
      // A NaN or an infinity would make CloudWatch drop the whole line. Disabled (the CLI, the
      // tests), nothing is kept: nothing may ever flush.
      if (disabled || !Number.isFinite(value)) return;
      if (shard === undefined) return add(counted, name, value);
      let ofShard = byShard.get(shard);
      if (!ofShard) byShard.set(shard, (ofShard = new Map()));
      add(ofShard, name, value);
    },
    coldStart(functionName) {
      emit(new Map([['ColdStart', [1]]]), functionName ? { service, function_name: functionName } : { service });
    },
    flush() {
      const values = counted;
      const shards = byShard;
      counted = new Map();
      byShard = new Map();
      emit(values, { service });
      for (const [shard, ofShard] of shards) emit(ofShard, { service, shard });
    },
  };
}

/** The one metrics buffer. */
export const metrics = createMetrics();

/** Every metric keyplan emits (a name, so that no table of them is bundled); the alarms and the runbook refer to these names. */
export type MetricName =
  | 'KeysProvisioned'
  | 'Rollbacks'
  /** A key left behind because even its rollback failed: the reconciler deletes it. */
  | 'OrphansRecorded'
  | 'EmailsFailed'
  | 'Rotations'
  | 'KeysDisabled'
  | 'KeysDeleted'
  | 'TierChanges'
  | 'TierChangesFailed'
  | 'KeysNeedingRepair'
  | 'Revocations'
  /** Throttled AWS calls (each attempt), whatever the retry made of them. */
  | 'Throttles'
  | 'AccountKeyCount'
  | 'OrphansDeleted'
  | 'KeysRepaired'
  | 'RecordsMissing'
  | 'ReconcileFailures'
  /** Registrations the resume sweep gave up on: an operator must look at them. */
  | 'RegistrationsAbandoned'
  /** Lifecycle events EventBridge took (a replayed stream record counts again). */
  | 'EventsPublished'
  /** Lifecycle events EventBridge still refused after the retries: the stream delivers them again. */
  | 'EventPublishFailures';

export function countMetric(name: MetricName, value = 1): void {
  metrics.count(name, value);
}

/**
 * A count of one shard (DESIGN §8): under `service` as every count, and under `service` and
 * `shard` too, so each shard has its own series (and its own key-ceiling alarm).
 */
export function countShardMetric(name: MetricName, shard: string, value = 1): void {
  metrics.count(name, value);
  metrics.count(name, value, shard);
}
