import { join } from 'node:path';
import { bootstrapLocalStack, functionEnvironment } from '../infra/local/bootstrap';
import { startEmulator } from '../infra/local/emulator';
import { runChild } from './child';
import type { JobResult } from './scheduled-jobs';
import type { SeedInput, SeedResult } from './seed-keys';
import { figure, type Figure, round } from './stats';

/**
 * Figure 5: the scheduled jobs at scale. For each size, a fresh emulator (so the account holds
 * exactly the seeded keys, as the reconciler counts them all), seeded apart from the measurement,
 * then reconcile and rotation, each in a fresh process so their peak memory is their own.
 */

export interface ScaleRun {
  keys: number;
  env: Record<string, string>;
  seed: SeedResult;
  reconcile: JobResult;
  rotate: JobResult;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export interface SeededScale {
  keys: number;
  seed: SeedResult;
  /** The function environment of the scale's own stack. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Starts the size's own emulator and seeds it; unmeasured, so it may run beside figure 4. */
export async function seedScale(keys: number, logDir: string, log: (line: string) => void): Promise<SeededScale> {
  const emulator = await startEmulator({ port: 0 });
  try {
    const tableName = `bench-scale-${keys}`;
    const stack = await bootstrapLocalStack({ endpoint: emulator.endpoint, tableName });
    const keyNamePrefix = `bench-scale-${keys}`;
    const now = Date.now();
    const seedInput: SeedInput = {
      endpoint: emulator.endpoint,
      tableName,
      keyNamePrefix,
      usagePlans: stack.usagePlans,
      keys,
      createdAt: new Date(now - 100 * DAY_MS).toISOString(),
      rotateAt: new Date(now - 10 * DAY_MS).toISOString(),
    };
    const seed = await runChild<SeedResult>({ script: 'seed-keys.ts', input: seedInput, logFile: join(logDir, `seed-${keys}.log`) });
    log(`seeded ${keys.toLocaleString('en-US')} keys in ${round(seed.seconds, 1)} s (${seed.calls} calls)`);
    // The jobs pace API Gateway calls to the account's budget; against the emulator that would only
    // measure the pacing (figure 4 does), so the budget is lifted here and the floor it sets in AWS
    // is computed from the management calls instead.
    const env = { ...functionEnvironment(stack), KEY_NAME_PREFIX: keyNamePrefix, MANAGEMENT_CALLS_PER_SECOND: '1000' };
    return { keys, seed, env, stop: () => emulator.stop() };
  } catch (error) {
    await emulator.stop();
    throw error;
  }
}

/** Reconcile, then rotation with a batch as large as the seeded keys; each in a fresh process. */
export async function measureScale(seeded: SeededScale, logDir: string, log: (line: string) => void): Promise<ScaleRun> {
  const { keys, env } = seeded;
  try {
    const job = (name: JobResult['job'], at: number) =>
      runChild<JobResult>({
        script: 'scheduled-jobs.ts',
        input: { job: name, env, keys, now: new Date(at).toISOString() },
        logFile: join(logDir, `${name}-${keys}.log`),
        nodeArgs: ['--expose-gc'],
      });
    // The reconciler judges keys older than RECONCILE_MIN_KEY_AGE_MINUTES (60): run it "later".
    const reconcile = await job('reconcile', Date.now() + 2 * HOUR_MS);
    log(`reconcile over ${keys.toLocaleString('en-US')} keys: ${round(reconcile.seconds, 1)} s, ${reconcile.calls} calls`);
    const rotate = await job('rotate', Date.now());
    log(`rotation of ${keys.toLocaleString('en-US')} keys: ${round(rotate.seconds, 1)} s, ${rotate.calls} calls`);
    return { keys, env, seed: seeded.seed, reconcile, rotate };
  } finally {
    await seeded.stop();
  }
}

/** API Gateway's management budget, for the floor the jobs' management calls set in AWS. */
const MANAGEMENT_CALLS_PER_SECOND = 10;
const isManagementCall = (operation: string) => operation.startsWith('APIGateway.');
/** The due-index Query pages a job reads; everything else it calls is per key. */
const isDuePage = (operation: string) => operation === 'DynamoDB.Query[due]';
/** API Gateway lists at most 500 keys per page; moto answers every listing in one. */
const AWS_PAGE_SIZE = 500;

/** What one job did, for the details of the rows. */
export function jobSummary(result: JobResult) {
  const management = sum(result.byOperation, isManagementCall);
  return {
    keys: result.keys,
    seconds: round(result.seconds, 2),
    cpuSeconds: round(result.cpuSeconds, 2),
    calls: result.calls,
    duePages: sum(result.byOperation, isDuePage),
    scans: sum(result.byOperation, (operation) => operation.startsWith('DynamoDB.Scan')),
    queries: sum(result.byOperation, (operation) => operation.startsWith('DynamoDB.Query')),
    managementCalls: management,
    secondsAtAccountBudget: round(management / MANAGEMENT_CALLS_PER_SECOND, 1),
    peakRssMiB: round(result.memoryPeak.rss / 2 ** 20, 1),
    peakHeapGrowthMiB: round(heapGrowth(result) / 2 ** 20, 1),
    byOperation: result.byOperation,
    report: result.report,
  };
}

const heapGrowth = (result: JobResult) => Math.max(0, result.memoryPeak.heapUsed - result.memoryBefore.heapUsed);

function sum(byOperation: Record<string, number>, pick: (operation: string) => boolean): number {
  return Object.entries(byOperation)
    .filter(([operation]) => pick(operation))
    .reduce((total, [, count]) => total + count, 0);
}

/**
 * The rows of figure 5 from a small and a large run (e.g. 1,000 and 10,000 keys): the large run is
 * the value, the small one the baseline, so "flat" and "linear" read as ratios.
 */
export function scaleFigures(small: ScaleRun, large: ScaleRun, deployedBatchSize: number): Figure[] {
  const rotated = (run: ScaleRun) => Number(run.rotate.report.rotated ?? 0);
  const perKeyCalls = (run: ScaleRun) => (run.rotate.calls - sum(run.rotate.byOperation, isDuePage)) / Math.max(1, rotated(run));
  const details = { small: summaries(small), large: summaries(large) };
  const scans =
    sum(small.rotate.byOperation, (o) => o.startsWith('DynamoDB.Scan')) +
    sum(small.reconcile.byOperation, (o) => o.startsWith('DynamoDB.Scan')) +
    sum(large.rotate.byOperation, (o) => o.startsWith('DynamoDB.Scan')) +
    sum(large.reconcile.byOperation, (o) => o.startsWith('DynamoDB.Scan'));
  const n = large.keys.toLocaleString('en-US');
  return [
    figure({
      id: 'scale.rotation.calls-per-key',
      group: 5,
      label: `Rotation of ${n} keys: AWS calls per key`,
      unit: 'calls',
      value: round(perKeyCalls(large), 3),
      // The fewest a rotation can make: claim, CreateApiKey, CreateUsagePlanKey, SendEmail, record.
      baseline: 5,
      target: { of: 'value', op: '<=', limit: 6, source: 'issue' },
      details: {
        rotated: rotated(large),
        duePages: sum(large.rotate.byOperation, isDuePage),
        byOperation: large.rotate.byOperation,
        // One run took the whole batch here; deployed, ROTATION_BATCH_SIZE keys a day are rotated
        // within the jobs' share of the management budget (computed from the calls measured).
        deployed: deployedRotation(large, deployedBatchSize),
      },
    }),
    figure({
      id: 'scale.rotation.memory',
      group: 5,
      label: `Rotation: peak heap growth, ${n} vs ${small.keys.toLocaleString('en-US')} keys`,
      unit: 'MiB',
      value: round(heapGrowth(large.rotate) / 2 ** 20, 1),
      baseline: round(heapGrowth(small.rotate) / 2 ** 20, 1),
      // "Flat in the number of keys": ten times the keys, well under twice the memory.
      target: { of: 'ratio', op: '<=', limit: 2, source: 'bench' },
      details: { peakRssMiB: { small: mib(small.rotate.memoryPeak.rss), large: mib(large.rotate.memoryPeak.rss) } },
    }),
    timeFigure('scale.rotation.time', `Rotation: wall time, ${n} keys`, small.rotate, large.rotate),
    timeFigure('scale.reconcile.time', `Reconcile: wall time, ${n} keys`, small.reconcile, large.reconcile, {
      calls: { small: small.reconcile.calls, large: large.reconcile.calls },
      callsAsAwsPages: { small: asAwsPages(small), large: asAwsPages(large) },
      peakHeapGrowthMiB: { small: mib(heapGrowth(small.reconcile)), large: mib(heapGrowth(large.reconcile)) },
    }),
    figure({
      id: 'scale.scans',
      group: 5,
      label: 'Scheduled jobs: Scan calls (reads are Query pages)',
      unit: 'calls',
      value: scans,
      baseline: null,
      target: { of: 'value', op: '=', limit: 0, source: 'issue' },
      details,
    }),
  ];
}

/**
 * The large run's wall time against the small run's scaled linearly: a ratio above 1 is work per
 * key growing with the number of keys. The job process's CPU time (keyplan's and the SDK's work,
 * without the emulator's) is in the details, to tell the two apart.
 */
function timeFigure(id: string, label: string, small: JobResult, large: JobResult, extra: Record<string, unknown> = {}): Figure {
  const scale = large.keys / small.keys;
  return figure({
    id,
    group: 5,
    label,
    unit: 's',
    value: round(large.seconds, 1),
    baseline: round(small.seconds * scale, 1),
    target: { of: 'ratio', op: '<=', limit: 1.2, source: 'bench' },
    details: {
      seconds: { small: round(small.seconds, 2), large: round(large.seconds, 2) },
      keys: { small: small.keys, large: large.keys },
      cpuSeconds: { small: round(small.cpuSeconds, 2), large: round(large.cpuSeconds, 2) },
      cpuRatioToLinear: round(large.cpuSeconds / (small.cpuSeconds * scale), 3),
      ...extra,
    },
  });
}

function deployedRotation(run: ScaleRun, batchSize: number) {
  const perKey = sum(run.rotate.byOperation, isManagementCall) / Math.max(1, Number(run.rotate.report.rotated ?? 0));
  /** Each job paces itself to the budget over the workers' count (10 / 2). */
  const share = MANAGEMENT_CALLS_PER_SECOND / 2;
  return {
    rotationBatchSize: batchSize,
    runsForAllKeys: Math.ceil(run.keys / batchSize),
    managementCallsPerKey: round(perKey, 3),
    secondsPerRunAtJobShare: round((batchSize * perKey) / share, 1),
    secondsForAllKeysInOneRunAtJobShare: round((run.keys * perKey) / share, 0),
  };
}

function summaries(run: ScaleRun) {
  return { seed: { seconds: round(run.seed.seconds, 1), calls: run.seed.calls }, reconcile: jobSummary(run.reconcile), rotate: jobSummary(run.rotate) };
}

/**
 * The reconciler's calls as AWS would page its listings: moto answers GetApiKeys and
 * GetUsagePlanKeys in one page, AWS in pages of 500.
 */
function asAwsPages(run: ScaleRun): number {
  const listed = run.reconcile.byOperation;
  const keyPages = Math.max(1, Math.ceil(Number(run.reconcile.report.accountKeys ?? 0) / AWS_PAGE_SIZE));
  // The seeded keys are spread evenly over the plans.
  const plans = listed['APIGateway.GetUsagePlanKeys'] ?? 0;
  const planPages = plans * Math.max(1, Math.ceil(run.keys / Math.max(1, plans) / AWS_PAGE_SIZE));
  return run.reconcile.calls - (listed['APIGateway.GetApiKeys'] ?? 0) - plans + keyPages + planPages;
}

const mib = (bytes: number) => round(bytes / 2 ** 20, 1);
