// Figure 5's measured runs: one scheduled job (reconcile, or rotation with a batch as large as
// the seeded keys) in a fresh process, with its AWS calls counted and its memory sampled.
import { performance } from 'node:perf_hooks';
import { createAwsClients } from '../shared/aws/clients';
import { loadConfig } from '../shared/config';
import { createReconcileDeps, createRotationDeps } from '../shared/wiring/compose';
import { reconcileKeys } from '../shared/reconcile/reconcile-keys';
import { rotateDueKeys } from '../shared/rotation/rotation-jobs';
import { CallCounter } from './call-counter';
import { childMain, progress } from './child';

export interface JobInput {
  job: 'reconcile' | 'rotate';
  /** The function environment of the figure's stack. */
  env: Record<string, string>;
  keys: number;
  /** The schedule's time. */
  now: string;
}

export interface MemoryFigures {
  rss: number;
  heapUsed: number;
}

export interface JobResult {
  job: JobInput['job'];
  keys: number;
  seconds: number;
  /** CPU time of this process during the run: keyplan's and the SDK's work, not the emulator's. */
  cpuSeconds: number;
  calls: number;
  byOperation: Record<string, number>;
  /** After the imports and a full GC, before the run. */
  memoryBefore: MemoryFigures;
  /** Highest sample during the run (every 20 ms). */
  memoryPeak: MemoryFigures;
  report: Record<string, unknown>;
}

const SAMPLE_EVERY_MS = 20;

async function runJob(input: JobInput): Promise<JobResult> {
  Object.assign(process.env, input.env);
  const config = loadConfig();
  const counter = new CallCounter();
  const clients = createAwsClients();
  counter.attachAll(clients);
  const now = new Date(input.now);

  const run =
    input.job === 'rotate'
      ? (() => {
          const deps = createRotationDeps(config, clients);
          return async () => ({ ...(await rotateDueKeys(now, input.keys, deps)) });
        })()
      : (() => {
          const deps = createReconcileDeps(config, clients);
          return async () => {
            const { actions, ...report } = await reconcileKeys({ now, dryRun: false }, deps);
            return { ...report, actions: actions.length };
          };
        })();

  // `--expose-gc` is passed by the parent: the run starts from a collected heap.
  (globalThis as { gc?: () => void }).gc?.();
  const memoryBefore = memory();
  const peak = { ...memoryBefore };
  const sample = () => {
    const now_ = memory();
    peak.rss = Math.max(peak.rss, now_.rss);
    peak.heapUsed = Math.max(peak.heapUsed, now_.heapUsed);
  };
  const sampler = setInterval(sample, SAMPLE_EVERY_MS);
  const ticker = setInterval(() => progress(`${input.job}: ${counter.total} calls so far`), 60_000);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let report: Record<string, unknown>;
  try {
    report = await run();
  } finally {
    clearInterval(sampler);
    clearInterval(ticker);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  sample();
  return { job: input.job, keys: input.keys, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, calls: counter.total, byOperation: counter.byOperation(), memoryBefore, memoryPeak: peak, report };
}

function memory(): MemoryFigures {
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

await childMain(runJob);
