import { describe, expect, it } from 'vitest';
import type { JobResult } from '../../bench/scheduled-jobs';
import { type ScaleRun, scaleFigures } from '../../bench/scale';

const MiB = 2 ** 20;

function job(overrides: Partial<JobResult> & Pick<JobResult, 'job' | 'keys'>): JobResult {
  return {
    seconds: 1,
    cpuSeconds: 0.5,
    calls: 0,
    byOperation: {},
    memoryBefore: { rss: 100 * MiB, heapUsed: 50 * MiB },
    memoryPeak: { rss: 120 * MiB, heapUsed: 60 * MiB },
    report: {},
    ...overrides,
  };
}

/** A rotation making 8 calls per key plus `duePages` due-index pages, and a reconcile. */
function run(keys: number, rotation: Partial<JobResult>, duePages = 2): ScaleRun {
  const byOperation = {
    'APIGateway.CreateApiKey': keys,
    'APIGateway.CreateUsagePlanKey': keys,
    'DynamoDB.PutItem': keys,
    'DynamoDB.UpdateItem': keys,
    'DynamoDB.Query': keys,
    'DynamoDB.TransactWriteItems': keys,
    'DynamoDB.DeleteItem': keys,
    'SES.SendEmail': keys,
    'DynamoDB.Query[due]': duePages,
  };
  return {
    keys,
    env: {},
    seed: { keys, seconds: 1, calls: 2 * keys },
    rotate: job({ job: 'rotate', keys, calls: 8 * keys + duePages, byOperation, report: { rotated: keys }, ...rotation }),
    reconcile: job({
      job: 'reconcile',
      keys,
      seconds: keys / 1000,
      calls: 10,
      byOperation: { 'APIGateway.GetApiKeys': 1, 'APIGateway.GetUsagePlanKeys': 3, 'DynamoDB.Query[due]': 5, 'DynamoDB.BatchGetItem': 1 },
      report: { accountKeys: keys },
    }),
  };
}

const byId = (figures: ReturnType<typeof scaleFigures>) => new Map(figures.map((f) => [f.id, f]));

describe('scaleFigures (figure 5)', () => {
  it('counts calls per key without the due-index pages, against the issue budget of 6', () => {
    const figures = byId(scaleFigures(run(1_000, { seconds: 10 }), run(10_000, { seconds: 100 }, 7), 50));

    expect(figures.get('scale.rotation.calls-per-key')).toMatchObject({ value: 8, baseline: 5, pass: false });
    expect(figures.get('scale.rotation.calls-per-key')?.details).toMatchObject({
      duePages: 7,
      deployed: { rotationBatchSize: 50, runsForAllKeys: 200, managementCallsPerKey: 2, secondsPerRunAtJobShare: 20 },
    });
  });

  it('reads time against the small run scaled linearly, and memory growth as a ratio', () => {
    const small = run(1_000, { seconds: 10, memoryPeak: { rss: 130 * MiB, heapUsed: 60 * MiB } });
    const large = run(10_000, { seconds: 130, memoryPeak: { rss: 150 * MiB, heapUsed: 75 * MiB } });

    const figures = byId(scaleFigures(small, large, 50));

    expect(figures.get('scale.rotation.time')).toMatchObject({ value: 130, baseline: 100, ratio: 1.3, pass: false });
    expect(figures.get('scale.rotation.memory')).toMatchObject({ value: 25, baseline: 10, ratio: 2.5, pass: false });
    expect(figures.get('scale.reconcile.time')).toMatchObject({ value: 10, baseline: 10, ratio: 1, pass: true });
  });

  it('adds up every Scan of both jobs at both sizes', () => {
    const small = run(1_000, {});
    const large = run(10_000, {});
    large.reconcile.byOperation['DynamoDB.Scan[due]'] = 2;
    small.rotate.byOperation['DynamoDB.Scan'] = 1;

    expect(byId(scaleFigures(small, large, 50)).get('scale.scans')).toMatchObject({ value: 3, pass: false });
  });
});
