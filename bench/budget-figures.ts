/**
 * Figures 4 and 6 against the management budget as the deploy splits it
 * (infra/serverless/management-budget.js): a function is held to what its own share allows, and
 * what the static split costs it (the account's budget, or the part of it the other functions
 * left unused) is reported beside, without a pass or a fail. Pure functions, so
 * test/unit/bench-budget-figures.test.ts can pin them down.
 */
import { figure, type Figure, round } from './stats';

/** Management calls one registration costs: CreateApiKey and CreateUsagePlanKey. */
export const MANAGEMENT_CALLS_PER_REGISTRATION = 2;

/** A function's part of the budget, as its environment sets it (MANAGEMENT_*) and Lambda caps it. */
export interface FunctionShare {
  /** Calls per second, all its containers together. */
  sharePerSecond: number;
  /** The most containers Lambda runs at once. */
  containers: number;
  /** Tokens a container may spend at once. */
  burst: number;
}

/**
 * The share a function's config paces its containers to (managementSharePerSecond over
 * managementConcurrency each, managementBurst at once), with Lambda's cap on its containers:
 * `containers`, the deploy's, when it sets one, else the config's managementConcurrency.
 */
export function shareOf(
  config: { managementSharePerSecond: number; managementConcurrency: number; managementBurst: number },
  containers?: number,
): FunctionShare {
  return { sharePerSecond: config.managementSharePerSecond, containers: containers ?? config.managementConcurrency, burst: config.managementBurst };
}

/** Items per second a share of calls per second allows, at `callsPerItem` calls each. */
export function itemsPerSecond(callsPerSecond: number, callsPerItem: number): number {
  if (!(callsPerSecond >= 0) || !(callsPerItem > 0)) throw new RangeError('calls per second must be at least 0 and calls per item above 0');
  return callsPerSecond / callsPerItem;
}

export interface ThroughputMeasured {
  /** Registrations ACTIVE per second, from the first message to the last acknowledged. */
  achievedPerSecond: number;
  /** The deployed worker's share: what it is held to. */
  worker: FunctionShare;
  /** The account's budget, every caller together (10 calls/s). */
  accountCallsPerSecond: number;
  duplicates: number;
  orphans: number;
  dlq: number;
  details?: Record<string, unknown>;
}

/**
 * Figure 4: the worker as deployed, alone, against the limit its share allows (target: 90% of it),
 * and against the account's limit, reported: the fraction of the account's registrations per
 * second the worker gets when nothing else runs, which is what a static split costs.
 */
export function throughputFigures(m: ThroughputMeasured): Figure[] {
  const shareLimit = itemsPerSecond(m.worker.sharePerSecond, MANAGEMENT_CALLS_PER_REGISTRATION);
  const accountLimit = itemsPerSecond(m.accountCallsPerSecond, MANAGEMENT_CALLS_PER_REGISTRATION);
  const zero = (id: string, label: string, value: number) =>
    figure({ id, group: 4, label, unit: 'count', value, baseline: null, target: { of: 'value', op: '=', limit: 0, source: 'issue' } });
  return [
    figure({
      id: 'throughput.registrations-per-second',
      group: 4,
      label: "Throughput: the worker vs its share's limit",
      unit: 'reg/s',
      value: round(m.achievedPerSecond, 3),
      baseline: round(shareLimit, 3),
      target: { of: 'ratio', op: '>=', limit: 0.9, source: 'issue' },
      details: { ...m.details, worker: m.worker, shareLimitPerSecond: round(shareLimit, 3), accountLimitPerSecond: accountLimit },
    }),
    figure({
      id: 'throughput.account-limit',
      group: 4,
      label: "Throughput: the worker alone vs the account's limit",
      unit: 'reg/s',
      value: round(m.achievedPerSecond, 3),
      baseline: round(accountLimit, 3),
      target: { of: 'reported', note: "the static split's cost" },
    }),
    zero('throughput.duplicates', 'Throughput: duplicate keys', m.duplicates),
    zero('throughput.orphans', 'Throughput: orphan keys', m.orphans),
    zero('throughput.dlq', 'Throughput: DLQ messages', m.dlq),
  ];
}

/**
 * Figure 6's import: against its own share (target: 90% of what it allows), and against what the
 * budget had left while it ran (the account's calls less those the other functions were
 * admitted), reported: what it could have done had the split lent it the others' idle share.
 */
export function importFigures(m: { achievedPerSecond: number; sharePerSecond: number; unusedLimitPerSecond: number }): Figure[] {
  const shareLimit = itemsPerSecond(m.sharePerSecond, MANAGEMENT_CALLS_PER_REGISTRATION);
  return [
    figure({
      id: 'mixed.import-throughput',
      group: 6,
      label: "Mixed load: import throughput vs its share's limit",
      unit: 'reg/s',
      value: round(m.achievedPerSecond, 3),
      baseline: round(shareLimit, 3),
      target: { of: 'ratio', op: '>=', limit: 0.9, source: 'bench' },
    }),
    figure({
      id: 'mixed.import-vs-unused',
      group: 6,
      label: 'Mixed load: import throughput vs the budget left unused',
      unit: 'reg/s',
      value: round(m.achievedPerSecond, 3),
      baseline: round(m.unusedLimitPerSecond, 3),
      target: { of: 'reported', note: "the static split's cost" },
    }),
  ];
}

/**
 * Why a request failed, as figure 6 counts it:
 * - `api-gateway-throttling`: API Gateway answered its management calls 429 until keyplan's
 *   retries ran out (the issue's "requests failed for throttling");
 * - `lambda-cap`: Lambda refused to run it, the function being at its concurrency cap (a
 *   registration beyond `register`'s reserved concurrency), before any of keyplan's code ran;
 * - `other`: anything else.
 */
export type FailureCause = 'api-gateway-throttling' | 'lambda-cap' | 'other';

/**
 * Splits the failures of one invocation (a request, a batch, a job run) between throttling and
 * other causes: at most one failed item per management call of that invocation that failed for
 * throttling after every retry. An invocation's items share no state, so a throttled call is
 * taken to have failed one item, and nothing more is blamed on throttling than that.
 */
export function attributeFailures(failed: number, throttledCalls: number): { throttling: number; other: number } {
  if (!(failed >= 0) || !(throttledCalls >= 0)) throw new RangeError('counts must be at least 0');
  const throttling = Math.min(failed, throttledCalls);
  return { throttling, other: failed - throttling };
}

/** Failed requests by cause, with the reason each was counted for. */
export class FailureTally {
  readonly byCause: Record<FailureCause, number> = { 'api-gateway-throttling': 0, 'lambda-cap': 0, other: 0 };
  readonly byReason = new Map<string, number>();

  add(cause: FailureCause, reason: string, count = 1): void {
    if (count <= 0) return;
    this.byCause[cause] += count;
    const key = `${cause}: ${reason}`;
    this.byReason.set(key, (this.byReason.get(key) ?? 0) + count);
  }

  get total(): number {
    return Object.values(this.byCause).reduce((sum, count) => sum + count, 0);
  }
}

/**
 * Figure 6's failed requests, one row per cause: throttling by API Gateway against the issue's
 * target of none, Lambda's refusals at a cap and everything else against the bench's.
 */
export function failureFigures(byCause: Readonly<Record<FailureCause, number>>): Figure[] {
  return [
    figure({
      id: 'mixed.failed',
      group: 6,
      label: "Mixed load: requests failed for API Gateway's throttling",
      unit: 'count',
      value: byCause['api-gateway-throttling'],
      baseline: null,
      target: { of: 'value', op: '=', limit: 0, source: 'issue' },
    }),
    figure({
      id: 'mixed.lambda-refused',
      group: 6,
      label: 'Mixed load: registrations Lambda refused (concurrency cap)',
      unit: 'count',
      value: byCause['lambda-cap'],
      baseline: null,
      target: { of: 'value', op: '=', limit: 0, source: 'bench' },
    }),
    figure({
      id: 'mixed.failed-other',
      group: 6,
      label: 'Mixed load: requests failed for other reasons',
      unit: 'count',
      value: byCause.other,
      baseline: null,
      target: { of: 'value', op: '=', limit: 0, source: 'bench' },
    }),
  ];
}
