import { describe, expect, it } from 'vitest';
import { busiestSlidingWindow, busiestWindow, callsBetween, callsPerWindow, limitLeftPerSecond } from '../../bench/windows';

describe('callsPerWindow (the mixed load figure: management calls per 10 s window)', () => {
  it('counts each call in the window it falls in, from the start, a window being half-open', () => {
    const times = [1_000, 1_000, 10_999, 11_000, 25_000, 30_999];
    expect(callsPerWindow(times, 1_000, 31_000, 10_000)).toEqual([3, 1, 2]);
  });

  it('leaves out calls before the start and at or after the end, and keeps empty windows', () => {
    expect(callsPerWindow([0, 5, 15, 40, 50], 10, 50, 10)).toEqual([1, 0, 0, 1]);
  });

  it('ends with a shorter window when the span is not a whole number of windows', () => {
    expect(callsPerWindow([0, 9, 10, 12], 0, 13, 10)).toEqual([2, 2]);
    expect(callsPerWindow([], 0, 0, 10)).toEqual([]);
  });

  it('refuses a window that is not positive and an end before the start', () => {
    expect(() => callsPerWindow([], 0, 10, 0)).toThrow(RangeError);
    expect(() => callsPerWindow([], 10, 0, 10)).toThrow(RangeError);
  });
});

describe('busiestWindow', () => {
  it('is the first window with the most calls, as calls per second of a whole window', () => {
    expect(busiestWindow([80, 120, 120, 40], 10_000)).toEqual({ index: 1, calls: 120, perSecond: 12 });
  });

  it('is nothing for no windows', () => {
    expect(busiestWindow([], 10_000)).toEqual({ index: -1, calls: 0, perSecond: 0 });
  });
});

describe('busiestSlidingWindow', () => {
  it('finds the busiest interval wherever it starts, even across two fixed windows', () => {
    // Fixed windows [0, 10) and [10, 20) hold 2 each; [5, 15) holds all 4.
    expect(busiestSlidingWindow([14, 5, 11, 9], 10)).toBe(4);
  });

  it('treats an interval as half-open: calls windowMs apart are never in one', () => {
    expect(busiestSlidingWindow([0, 10, 20], 10)).toBe(1);
    expect(busiestSlidingWindow([], 10)).toBe(0);
  });
});

describe('callsBetween', () => {
  it('counts from `from` included to `until` excluded', () => {
    expect(callsBetween([1, 2, 3, 4], 2, 4)).toBe(2);
  });
});

describe('limitLeftPerSecond (the import\'s limit under the mixed load)', () => {
  it('is the budget less what the others were admitted, in items per second', () => {
    // 10 calls/s for 100 s is 1,000 calls; the others took 400; 600 calls at 2 per registration
    // over 100 s is 3 registrations/s.
    expect(limitLeftPerSecond({ budgetPerSecond: 10, seconds: 100, othersAdmitted: 400, callsPerItem: 2 })).toBe(3);
  });

  it('is the whole budget when nobody else calls, and never below 0', () => {
    expect(limitLeftPerSecond({ budgetPerSecond: 10, seconds: 60, othersAdmitted: 0, callsPerItem: 2 })).toBe(5);
    expect(limitLeftPerSecond({ budgetPerSecond: 10, seconds: 10, othersAdmitted: 140, callsPerItem: 2 })).toBe(0);
  });

  it('refuses an empty span and a cost of nothing', () => {
    expect(() => limitLeftPerSecond({ budgetPerSecond: 10, seconds: 0, othersAdmitted: 0, callsPerItem: 2 })).toThrow(RangeError);
    expect(() => limitLeftPerSecond({ budgetPerSecond: 10, seconds: 1, othersAdmitted: 0, callsPerItem: 0 })).toThrow(RangeError);
  });
});
