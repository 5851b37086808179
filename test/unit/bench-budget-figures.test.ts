import { describe, expect, it } from 'vitest';
import {
  attributeFailures,
  FailureTally,
  failureFigures,
  importFigures,
  itemsPerSecond,
  shareOf,
  throughputFigures,
} from '../../bench/budget-figures';
import { readDeployedFunctions } from '../../bench/deployed-functions';
import type { Figure } from '../../bench/stats';
import { loadConfig } from '../../shared/config';
import { splitBudget } from '../../infra/serverless/management-budget.js';

const byId = (figures: Figure[]) => new Map(figures.map((f) => [f.id, f]));

describe('itemsPerSecond', () => {
  it('is the calls per second a share allows, over the calls one item costs', () => {
    expect(itemsPerSecond(3.5, 2)).toBe(1.75);
    expect(itemsPerSecond(10, 2)).toBe(5);
    expect(itemsPerSecond(0, 2)).toBe(0);
  });

  it('refuses a negative share and an item that costs nothing', () => {
    expect(() => itemsPerSecond(-1, 2)).toThrow(RangeError);
    expect(() => itemsPerSecond(1, 0)).toThrow(RangeError);
  });
});

describe('shareOf', () => {
  const config = { managementSharePerSecond: 3.5, managementConcurrency: 2, managementBurst: 2 };

  it("takes the share and burst from the config, and the deploy's cap on containers when it sets one", () => {
    expect(shareOf(config, 4)).toEqual({ sharePerSecond: 3.5, containers: 4, burst: 2 });
    expect(shareOf(config)).toEqual({ sharePerSecond: 3.5, containers: 2, burst: 2 });
  });

  it("reads the repository's worker as serverless.yml deploys it: the split's share, cap and burst", async () => {
    const { provisionWorker } = await readDeployedFunctions(['provisionWorker']);
    const split = splitBudget({ managementCallsPerSecond: 10, workerConcurrency: 2 });
    const env = { TABLE_NAME: 't', TIER_MAP: '{"free":"p"}', SENDER_EMAIL: 'keys@example.com', ...provisionWorker!.environment };

    const share = shareOf(loadConfig(env), provisionWorker!.concurrency);

    expect(share).toEqual({
      sharePerSecond: split.provisionWorker!.sharePerSecond,
      containers: split.provisionWorker!.concurrency,
      burst: split.provisionWorker!.burst,
    });
    // Not the whole account's budget: the worker is held to its part of it.
    expect(share.sharePerSecond).toBeLessThan(10);
  });
});

describe('throughputFigures (figure 4)', () => {
  const measured = {
    achievedPerSecond: 1.6,
    worker: { sharePerSecond: 3.5, containers: 2, burst: 2 },
    accountCallsPerSecond: 10,
    duplicates: 0,
    orphans: 0,
    dlq: 0,
  };

  it("holds the worker to what its share allows (2 calls a registration), at 90% or more", () => {
    const figures = byId(throughputFigures(measured));

    expect(figures.get('throughput.registrations-per-second')).toMatchObject({
      value: 1.6,
      baseline: 1.75,
      ratio: 0.9143,
      target: 'ratio >= 0.90',
      pass: true,
    });
    expect(byId(throughputFigures({ ...measured, achievedPerSecond: 1.5 })).get('throughput.registrations-per-second')).toMatchObject({
      pass: false,
    });
  });

  it("reports, without judging it, what fraction of the account's 5 registrations/s the worker gets alone", () => {
    const account = byId(throughputFigures(measured)).get('throughput.account-limit');

    expect(account).toMatchObject({ value: 1.6, baseline: 5, ratio: 0.32, pass: null });
    expect(account?.target).toMatch(/static split/);
  });

  it('keeps duplicate keys, orphans and DLQ messages at zero', () => {
    const figures = byId(throughputFigures({ ...measured, orphans: 1 }));
    expect(figures.get('throughput.duplicates')).toMatchObject({ value: 0, pass: true });
    expect(figures.get('throughput.orphans')).toMatchObject({ value: 1, pass: false });
    expect(figures.get('throughput.dlq')).toMatchObject({ value: 0, pass: true });
  });
});

describe('importFigures (figure 6)', () => {
  it('holds the import to its own share, and reports the budget the others left unused beside', () => {
    const figures = byId(importFigures({ achievedPerSecond: 1.59, sharePerSecond: 3.5, unusedLimitPerSecond: 3.44 }));

    expect(figures.get('mixed.import-throughput')).toMatchObject({ baseline: 1.75, ratio: 0.9086, pass: true });
    expect(figures.get('mixed.import-vs-unused')).toMatchObject({ baseline: 3.44, ratio: 0.4622, pass: null });
    expect(figures.get('mixed.import-vs-unused')?.target).toMatch(/static split/);
  });
});

describe('attributeFailures', () => {
  it('blames throttling for at most one failed item per call that failed for throttling', () => {
    expect(attributeFailures(3, 1)).toEqual({ throttling: 1, other: 2 });
    expect(attributeFailures(1, 4)).toEqual({ throttling: 1, other: 0 });
    expect(attributeFailures(2, 0)).toEqual({ throttling: 0, other: 2 });
    expect(attributeFailures(0, 3)).toEqual({ throttling: 0, other: 0 });
  });

  it('refuses negative counts', () => {
    expect(() => attributeFailures(-1, 0)).toThrow(RangeError);
  });
});

describe('FailureTally and failureFigures', () => {
  it("counts by cause and reason, and gives Lambda's refusals a row apart from API Gateway's throttling", () => {
    const tally = new FailureTally();
    tally.add('lambda-cap', 'register', 3);
    tally.add('api-gateway-throttling', 'worker', 1);
    tally.add('other', 'import', 0);

    expect(tally.total).toBe(4);
    expect(Object.fromEntries(tally.byReason)).toEqual({ 'lambda-cap: register': 3, 'api-gateway-throttling: worker': 1 });

    const figures = byId(failureFigures(tally.byCause));
    expect(figures.get('mixed.failed')).toMatchObject({ value: 1, target: 'value = 0', pass: false });
    expect(figures.get('mixed.lambda-refused')).toMatchObject({ value: 3, target: 'value = 0 (bench)', pass: false });
    expect(figures.get('mixed.failed-other')).toMatchObject({ value: 0, pass: true });
  });

  it('passes the issue’s target when nothing failed for throttling, whatever Lambda refused', () => {
    const figures = byId(failureFigures({ 'api-gateway-throttling': 0, 'lambda-cap': 2, other: 0 }));
    expect(figures.get('mixed.failed')).toMatchObject({ value: 0, pass: true });
    expect(figures.get('mixed.lambda-refused')).toMatchObject({ value: 2, pass: false });
  });
});
