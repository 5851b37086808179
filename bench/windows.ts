/**
 * The mixed-load figure's arithmetic over timestamped calls: calls per window, the busiest window,
 * and what the management budget leaves to one function. Pure functions, so
 * test/unit/bench-windows.test.ts can pin them down. Times are epoch milliseconds.
 */

/**
 * Calls in each consecutive window of `windowMs` from `start`: window k is
 * [start + k·windowMs, start + (k + 1)·windowMs). Windows cover [start, end); the last may be
 * shorter than the others and is still held to a whole window's budget by its reader. Calls
 * outside [start, end) are not counted.
 */
export function callsPerWindow(times: readonly number[], start: number, end: number, windowMs: number): number[] {
  if (!(windowMs > 0)) throw new RangeError(`window ${windowMs} ms is not positive`);
  if (!(end >= start)) throw new RangeError('the end is before the start');
  const counts = new Array<number>(Math.ceil((end - start) / windowMs)).fill(0);
  for (const at of times) {
    if (at < start || at >= end) continue;
    counts[Math.floor((at - start) / windowMs)]!++;
  }
  return counts;
}

/** The busiest of `callsPerWindow`'s windows as a rate (calls per second of a whole window), and which it is. */
export function busiestWindow(counts: readonly number[], windowMs: number): { index: number; calls: number; perSecond: number } {
  let index = -1;
  let calls = 0;
  counts.forEach((count, i) => {
    if (index === -1 || count > calls) [index, calls] = [i, count];
  });
  return { index, calls, perSecond: calls / (windowMs / 1000) };
}

/** The most calls in any interval [t, t + windowMs), wherever it starts: at least the busiest fixed window. */
export function busiestSlidingWindow(times: readonly number[], windowMs: number): number {
  if (!(windowMs > 0)) throw new RangeError(`window ${windowMs} ms is not positive`);
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let first = 0;
  for (let last = 0; last < sorted.length; last++) {
    while (sorted[last]! - sorted[first]! >= windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

/** Calls at or after `from` and before `until`. */
export function callsBetween(times: readonly number[], from: number, until: number): number {
  let count = 0;
  for (const at of times) if (at >= from && at < until) count++;
  return count;
}

/**
 * What the account's management budget leaves to one function over `seconds`, in its items per
 * second: the budget's calls in that time, less the calls the other callers were admitted, divided
 * by the calls one item costs. Never below 0. The bucket's burst is not counted: it is a one-off,
 * and a function that uses it comes out above 1 against this limit.
 */
export function limitLeftPerSecond(input: {
  budgetPerSecond: number;
  seconds: number;
  othersAdmitted: number;
  callsPerItem: number;
}): number {
  const { budgetPerSecond, seconds, othersAdmitted, callsPerItem } = input;
  if (!(seconds > 0) || !(callsPerItem > 0)) throw new RangeError('seconds and calls per item must be positive');
  return Math.max(0, budgetPerSecond * seconds - othersAdmitted) / callsPerItem / seconds;
}
