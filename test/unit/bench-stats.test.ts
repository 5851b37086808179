import { describe, expect, it } from 'vitest';
import { formatNumber, formatTable } from '../../bench/report';
import { describeTarget, figure, type FigureInput, median, meets, percentile, ratio } from '../../bench/stats';

const input = (overrides: Partial<FigureInput>): FigureInput => ({
  id: 'test.figure',
  group: 1,
  label: 'a figure',
  unit: 'ms',
  value: 110,
  baseline: 100,
  target: { of: 'ratio', op: '<=', limit: 1.1, source: 'issue' },
  ...overrides,
});

describe('median', () => {
  it('is the middle sample of an odd count, whatever the order', () => {
    expect(median([9, 1, 5])).toBe(5);
  });

  it('is the mean of the two middle samples of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('refuses no samples and samples that are not numbers', () => {
    expect(() => median([])).toThrow(RangeError);
    expect(() => median([1, Number.NaN])).toThrow(RangeError);
  });
});

describe('percentile (nearest rank)', () => {
  const oneTo200 = Array.from({ length: 200 }, (_, i) => 200 - i);

  it('is the smallest sample with p percent of the samples at or below it', () => {
    expect(percentile(oneTo200, 95)).toBe(190);
    expect(percentile(oneTo200, 50)).toBe(100);
    expect(percentile([3, 1, 2], 95)).toBe(3);
  });

  it('is always a measured sample, never an interpolation', () => {
    expect(percentile([10, 20], 60)).toBe(20);
  });

  it('takes p in (0, 100]', () => {
    expect(percentile([1, 2, 3], 100)).toBe(3);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('ratio', () => {
  it('divides the value by the baseline, or is null without one', () => {
    expect(ratio(15, 10)).toBe(1.5);
    expect(ratio(15, null)).toBeNull();
    expect(ratio(15, 0)).toBeNull();
  });
});

describe('figure', () => {
  it('passes a ratio target at its limit and fails just above it', () => {
    expect(figure(input({ value: 110, baseline: 100 }))).toMatchObject({ ratio: 1.1, pass: true });
    expect(figure(input({ value: 110.1, baseline: 100 }))).toMatchObject({ ratio: 1.101, pass: false });
  });

  it('checks a value target against the value, whatever the baseline', () => {
    const exact = { of: 'value', op: '=', limit: 5, source: 'issue' } as const;
    expect(figure(input({ value: 5, baseline: 5, target: exact }))).toMatchObject({ pass: true, ratio: 1 });
    expect(figure(input({ value: 6, baseline: 5, target: exact }))).toMatchObject({ pass: false, ratio: 1.2 });
    expect(figure(input({ value: 0, baseline: null, target: { ...exact, limit: 0 } }))).toMatchObject({ pass: true, ratio: null });
  });

  it('passes an at-least target at its limit', () => {
    const atLeast = { of: 'ratio', op: '>=', limit: 0.9, source: 'issue' } as const;
    expect(figure(input({ value: 4.5, baseline: 5, target: atLeast })).pass).toBe(true);
    expect(figure(input({ value: 4.49, baseline: 5, target: atLeast })).pass).toBe(false);
  });

  it('fails a ratio target when there is no baseline to compare with', () => {
    expect(figure(input({ baseline: null })).pass).toBe(false);
  });

  it('neither passes nor fails a figure that is only reported, and still computes its ratio', () => {
    const reported = figure(input({ value: 1.6, baseline: 5, target: { of: 'reported', note: "the static split's cost" } }));
    expect(reported).toMatchObject({ ratio: 0.32, pass: null, target: "none: the static split's cost" });
    expect(figure(input({ baseline: null, target: { of: 'reported', note: 'n' } }))).toMatchObject({ ratio: null, pass: null });
  });

  it('states the target as text, marking the ones the bench set itself', () => {
    expect(figure(input({})).target).toBe('ratio <= 1.10');
    expect(describeTarget({ of: 'value', op: '<=', limit: 6, source: 'bench' })).toBe('value <= 6 (bench)');
  });
});

describe('meets', () => {
  it('ignores floating-point noise at the limit', () => {
    expect(meets(0.1 + 0.2, '<=', 0.3)).toBe(true);
    expect(meets(0.1 + 0.2, '=', 0.3)).toBe(true);
  });
});

describe('the printed table', () => {
  it('is Markdown with one row per figure, its units, and pass or FAIL', () => {
    const table = formatTable([
      figure(input({ label: 'overhead', value: 1234.5, baseline: 1000 })),
      figure(input({ label: 'duplicates', unit: 'count', value: 0, baseline: null, target: { of: 'value', op: '=', limit: 0, source: 'issue' } })),
    ]);
    const lines = table.split('\n');

    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\| # +\| figure +\| value +\| baseline +\| ratio +\| target +\| pass \|$/);
    expect(lines[2]).toContain('| 1,234.5 ms');
    expect(lines[2]).toContain('| 1,000 ms');
    expect(lines[2]).toContain('| 1.235');
    expect(lines[2]).toContain('| FAIL |');
    expect(lines[3]).toContain('| — ');
    expect(lines[3]).toContain('| pass |');
  });

  it('shows a reported figure with no pass or FAIL', () => {
    const table = formatTable([figure(input({ value: 1.6, baseline: 5, unit: 'reg/s', target: { of: 'reported', note: 'cost' } }))]);
    expect(table.split('\n')[2]).toMatch(/\| none: cost +\| — +\|$/);
  });

  it('formats numbers with grouped thousands and at most the given decimals', () => {
    expect(formatNumber(10_000)).toBe('10,000');
    expect(formatNumber(1.23456, 3)).toBe('1.235');
    expect(formatNumber(null)).toBe('—');
  });
});
