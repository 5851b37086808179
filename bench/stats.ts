/**
 * The bench's arithmetic: percentiles, ratios and the pass/fail of a figure against its target.
 * Pure functions, so test/unit/bench-stats.test.ts can pin them down.
 */

/** The median: the middle sample, or the mean of the two middle ones. */
export function median(samples: readonly number[]): number {
  const sorted = sortedCopy(samples);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * The nearest-rank percentile: the smallest sample with at least `p` percent of the samples at or
 * below it. It is always a measured value, never an interpolation between two.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in (0, 100]`);
  const sorted = sortedCopy(samples);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
}

function sortedCopy(samples: readonly number[]): number[] {
  if (samples.length === 0) throw new RangeError('no samples');
  if (samples.some((sample) => !Number.isFinite(sample))) throw new RangeError('a sample is not a finite number');
  return [...samples].sort((a, b) => a - b);
}

/** value / baseline, or null when there is no baseline to divide by. */
export function ratio(value: number, baseline: number | null): number | null {
  if (baseline === null || baseline === 0) return null;
  return value / baseline;
}

/** Rounds for the report; the raw samples stay in the details. */
export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** What a figure's target constrains, its value or its ratio to the baseline, and how. */
export interface TargetSpec {
  of: 'value' | 'ratio';
  op: '=' | '<=' | '>=';
  limit: number;
  /**
   * `issue`: the target is the (#9). `bench`: the issue sets none for this figure, so the
   * bench states one, to be read as such.
   */
  source: 'issue' | 'bench';
}

/**
 * A figure the bench reports without judging it: a comparison worth showing that no target
 * applies to (e.g. what a static split of the management budget costs a function running alone).
 * `note` says what the row is, in the target column.
 */
export interface ReportedOnly {
  of: 'reported';
  note: string;
}

export type FigureTarget = TargetSpec | ReportedOnly;

export interface FigureInput {
  /** Stable id for scripts, e.g. `calls.fresh-registration`. */
  id: string;
  /** Which of the five figures: 1..5. */
  group: number;
  label: string;
  unit: string;
  value: number;
  baseline: number | null;
  target: FigureTarget;
  details?: Record<string, unknown>;
}

/** One row of the table and of results.json. */
export interface Figure extends Omit<FigureInput, 'target'> {
  ratio: number | null;
  /** The target as text, e.g. `ratio <= 1.10`. */
  target: string;
  targetSpec: FigureTarget;
  /** null for a figure that is only reported: it neither passes nor fails. */
  pass: boolean | null;
}

/** Computes ratio and pass; a ratio target with no baseline fails, since nothing was compared. */
export function figure(input: FigureInput): Figure {
  const { target, ...rest } = input;
  const r = ratio(input.value, input.baseline);
  if (target.of === 'reported') {
    return { ...rest, ratio: r === null ? null : round(r, 4), target: describeTarget(target), targetSpec: target, pass: null };
  }
  const checked = target.of === 'value' ? input.value : r;
  return {
    ...rest,
    ratio: r === null ? null : round(r, 4),
    target: describeTarget(target),
    targetSpec: target,
    pass: checked !== null && meets(checked, target.op, target.limit),
  };
}

/** Comparisons to the target tolerate floating-point noise far below anything the bench reports. */
const EPSILON = 1e-9;

export function meets(measured: number, op: TargetSpec['op'], limit: number): boolean {
  switch (op) {
    case '=':
      return Math.abs(measured - limit) <= EPSILON;
    case '<=':
      return measured <= limit + EPSILON;
    case '>=':
      return measured >= limit - EPSILON;
  }
}

export function describeTarget(target: FigureTarget): string {
  if (target.of === 'reported') return `none: ${target.note}`;
  const limit = target.of === 'ratio' ? target.limit.toFixed(2) : String(target.limit);
  return `${target.of} ${target.op} ${limit}${target.source === 'bench' ? ' (bench)' : ''}`;
}
