// `npm run bench` (issue #9): keyplan's own cost next to AWS's, measured side by side against the
// local emulator, which this command starts and stops. Prints one table and writes
// bench/results.json. The targets are goals, not tests: a miss is reported, not an error.
//
//   npm run bench                       every figure
//   npm run bench -- calls overhead     some of them: calls, overhead, cold-start, throughput, mixed, scale, scale-out
//   npm run bench -- scale --scale-keys=500,5000 --registrations=200 --samples=200 --init-runs=20
//   npm run bench -- mixed --mixed-import=50   figure 6 at a twentieth of the issue's size
//   npm run bench -- scale-out --scale-out-registrations=200   figure 7 at a fifth of its size
//   npm run bench -- scale-out --scale-out-share=deployed   figure 7 with the worker at its deployed share of each shard's budget
//   npm run bench -- console --console-keys=1000 --samples=20   figure 8 over fewer keys
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { bootstrapLocalStack } from '../infra/local/bootstrap';
import { type Emulator, startEmulator } from '../infra/local/emulator';
import { loadConfig } from '../shared/config';
import { benchDir, runChild } from './child';
import type { MixedLoadInput } from './mixed-load';
import { formatTable, machine } from './report';
import { measureScale, type ScaleRun, scaleFigures, type SeededScale, seedScale } from './scale';
import type { ConsoleBenchInput, ConsoleBenchResult } from './console';
import { consoleFigures } from './console-figures';
import type { ScaleOutInput } from './scale-out';
import { type ScaleOutPoint, scaleOutFigures } from './scale-out-figures';
import type { Figure } from './stats';

const FIGURES = ['calls', 'overhead', 'cold-start', 'throughput', 'mixed', 'scale', 'scale-out', 'console'] as const;
/** Figures that start emulators of their own: the shared one is not started for them alone. */
const OWN_EMULATOR: readonly FigureName[] = ['scale', 'console'];
/** Figure 7's points: the local stack's first shards (infra/local/bootstrap.ts), 1 the baseline. */
const SCALE_OUT_SHARDS = [1, 2, 3] as const;
type FigureName = (typeof FIGURES)[number];

interface Options {
  figures: FigureName[];
  /** Figure 5's sizes, small first: the large one is measured against the small one. */
  scaleKeys: [number, number];
  registrations: number;
  /** Figure 6's import rows; the rotations (half as many) and tier changes (a tenth) follow it. */
  mixedImport: number;
  /** Figure 7's registrations at each point. */
  scaleOutRegistrations: number;
  /**
   * Figure 7's worker: each shard's whole budget (the default: the issue's target, 0.9 × shards ×
   * 5 keys/s), or its deployed share of each shard's budget.
   */
  scaleOutShare: ScaleOutInput['share'];
  /** Figure 8's seeded keys. */
  consoleKeys: number;
  samples: number;
  warmup: number;
  initRuns: number;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    figures: [],
    scaleKeys: [1_000, 10_000],
    registrations: 1_000,
    mixedImport: 1_000,
    scaleOutRegistrations: 1_000,
    scaleOutShare: 'account',
    consoleKeys: 10_000,
    samples: 200,
    warmup: 20,
    // Twice the issue's 20: this machine's init samples spread over 50 ms, and the median of 20
    // moved a ratio by up to 0.1 between runs of the same code.
    initRuns: 40,
  };
  for (const arg of argv) {
    const [name, value = ''] = arg.split('=', 2);
    const count = (minimum: number) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < minimum) throw new Error(`${name} takes a whole number of at least ${minimum}`);
      return n;
    };
    if ((FIGURES as readonly string[]).includes(arg)) options.figures.push(arg as FigureName);
    else if (name === '--scale-keys') {
      const sizes = value.split(',').map(Number);
      if (sizes.length !== 2 || !sizes.every((n) => Number.isInteger(n) && n > 0) || sizes[0]! >= sizes[1]!) {
        throw new Error('--scale-keys takes two sizes, small first: --scale-keys=1000,10000');
      }
      options.scaleKeys = [sizes[0]!, sizes[1]!];
    } else if (name === '--registrations') options.registrations = count(10);
    else if (name === '--mixed-import') options.mixedImport = count(10);
    else if (name === '--scale-out-registrations') options.scaleOutRegistrations = count(10);
    else if (name === '--scale-out-share') {
      if (value !== 'deployed' && value !== 'account') throw new Error('--scale-out-share takes deployed or account');
      options.scaleOutShare = value;
    }
    // The issue asks for at least 200 samples of each path and 20 processes per bundle (the
    // defaults are 200 and 40); fewer are for trying the bench out, and main() says so.
    else if (name === '--console-keys') options.consoleKeys = count(10);
    else if (name === '--samples') options.samples = count(10);
    else if (name === '--init-runs') options.initRuns = count(3);
    else throw new Error(`unknown argument ${arg}; figures: ${FIGURES.join(', ')}`);
  }
  if (options.figures.length === 0) options.figures = [...FIGURES];
  return options;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const wanted = (name: FigureName) => options.figures.includes(name);
  const logDir = await mkdtemp(join(tmpdir(), 'keyplan-bench-'));
  const started = performance.now();
  const figures: Figure[] = [];
  const errors: { figure: FigureName; message: string }[] = [];
  const sections: Record<string, number> = {};
  const say = (line: string) => console.error(line);
  const attempt = async (name: FigureName, work: () => Promise<Figure[]>) => {
    const sectionStarted = performance.now();
    try {
      figures.push(...(await work()));
    } catch (error) {
      errors.push({ figure: name, message: error instanceof Error ? error.message : String(error) });
      say(`  ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    sections[name] = Math.round((performance.now() - sectionStarted) / 1000);
  };

  // Every emulator the bench starts loads bench/emulator/sitecustomize.py (a Query reads its
  // partition only; see there): infra/local/emulator.ts passes this environment on to Python.
  process.env.PYTHONPATH = [join(benchDir, 'emulator'), process.env.PYTHONPATH].filter(Boolean).join(delimiter);
  process.env.PYTHONDONTWRITEBYTECODE ??= '1';

  say(`keyplan bench: ${options.figures.join(', ')} (logs in ${logDir})`);
  if (options.samples < 200 || options.initRuns < 20) {
    say('  fewer samples than issue #9 asks for (200 per path, 20 processes per bundle): a trial run, not a result');
  }
  let emulator: Emulator | undefined;
  const seeded: SeededScale[] = [];
  try {
    if (options.figures.some((name) => !OWN_EMULATOR.includes(name))) {
      emulator = await startEmulator({ port: 0 });
      // The local stack's plans, sender and REST API, shared by the figures like an account's.
      await bootstrapLocalStack({ endpoint: emulator.endpoint });
    }
    const endpoint = emulator?.endpoint ?? '';
    const child = (name: FigureName, script: string, input: Record<string, unknown>, nodeArgs: string[] = []) =>
      attempt(name, () => runChild<Figure[]>({ script, input: { endpoint, ...input }, logFile: join(logDir, `${name}.log`), nodeArgs }));

    if (wanted('calls')) {
      say('1. AWS calls per operation');
      await child('calls', 'calls-per-operation.ts', {});
    }
    if (wanted('overhead')) {
      say(`2. overhead: ${options.samples} registrations through HTTP, ${options.samples} bare and ${options.samples} minimal, in turn`);
      await child('overhead', 'overhead.ts', { samples: options.samples, warmup: options.warmup });
    }
    if (wanted('cold-start')) {
      say(`3. cold start: every function bundled, ${options.initRuns} fresh processes each`);
      await child('cold-start', 'cold-start.ts', { runs: options.initRuns, outDir: join(logDir, 'bundles') });
    }
    if (wanted('throughput')) {
      say(`4. throughput: ${options.registrations} registrations through the queue, the worker as deployed (its share of the management budget)`);
      // The worker's containers, share and timeout come from serverless.yml (bench/throughput.ts).
      await child('throughput', 'throughput.ts', { registrations: options.registrations });
    }
    if (wanted('mixed')) {
      // The issue's sizes: 1,000 rows, 500 due keys, 100 tier changes, a registration a second.
      const input: Omit<MixedLoadInput, 'endpoint'> = {
        importRows: options.mixedImport,
        rotations: Math.max(1, Math.round(options.mixedImport / 2)),
        tierChanges: Math.max(1, Math.round(options.mixedImport / 10)),
        syncPerSecond: 1,
      };
      say(
        `6. mixed load: import of ${input.importRows}, rotation of ${input.rotations}, ${input.tierChanges} tier changes ` +
          `and ${input.syncPerSecond} registration/s at once, at the account's management budget`,
      );
      await child('mixed', 'mixed-load.ts', input);
    }
    if (wanted('scale-out')) {
      say(
        `7. scale-out: ${options.scaleOutRegistrations} registrations through the queue over ${SCALE_OUT_SHARDS.join(', ')} shards, ` +
          `the worker ${options.scaleOutShare === 'deployed' ? "at its deployed share of each shard's budget" : "with each shard's whole budget"}, ` +
          'each shard with a management budget of its own',
      );
      await attempt('scale-out', async () => {
        const points: ScaleOutPoint[] = [];
        // One process per point, one after the other: each has its own shard list, and a point
        // beside another would slow both on a small machine.
        for (const shards of SCALE_OUT_SHARDS) {
          const input: ScaleOutInput = { endpoint, registrations: options.scaleOutRegistrations, shards, share: options.scaleOutShare };
          points.push(await runChild<ScaleOutPoint>({ script: 'scale-out.ts', input, logFile: join(logDir, `scale-out-${shards}.log`) }));
        }
        return scaleOutFigures(points);
      });
    }
    await emulator?.stop();
    emulator = undefined;

    if (wanted('scale')) {
      await attempt('scale', async () => {
        say(`5. scheduled jobs over ${options.scaleKeys.map((n) => n.toLocaleString('en-US')).join(' and ')} keys`);
        // Seeding is not measured, but it is not run beside another figure either: a busy machine
        // slows figure 4's workers below the budget (a first version did, and they fell to 3/s).
        const seedingStarted = performance.now();
        for (const keys of options.scaleKeys) seeded.push(await seedScale(keys, logDir, (line) => say(`  ${line}`)));
        sections.scaleSeeding = Math.round((performance.now() - seedingStarted) / 1000);
        const runs: ScaleRun[] = [];
        while (seeded.length > 0) runs.push(await measureScale(seeded.shift()!, logDir, (line) => say(`  ${line}`)));
        const [small, large] = runs;
        if (!small || !large) throw new Error('a scale run is missing');
        // The deployed batch size is the configuration's default (serverless.yml passes the same).
        return scaleFigures(small, large, loadConfig(small.env).rotationBatchSize);
      });
    }
    if (wanted('console')) {
      await attempt('console', async () => {
        const keys = options.consoleKeys;
        // The issue's 200 samples per path would take minutes of the emulator; 50 show a p95.
        const samples = Math.min(options.samples, 50);
        say(`8. console: the overview and a customer page over ${keys.toLocaleString('en-US')} keys, ${samples} samples each, beside the bare reads`);
        const scale = await seedScale(keys, logDir, (line) => say(`  ${line}`));
        try {
          const input: ConsoleBenchInput = { env: scale.env, samples, warmup: 3, customerId: `scale-${Math.floor(keys / 2)}` };
          const result = await runChild<ConsoleBenchResult>({ script: 'console.ts', input, logFile: join(logDir, 'console.log') });
          return consoleFigures(result, keys);
        } finally {
          await scale.stop();
        }
      });
    }
  } finally {
    await emulator?.stop();
    for (const scale of seeded) await scale.stop();
  }

  // Figures in the issue's order, whatever order they were measured in (figure 6 before 5).
  figures.sort((a, b) => a.group - b.group);
  const results = {
    date: new Date().toISOString(),
    machine: machine(),
    emulator: 'infra/local/emulator.py with bench/emulator/sitecustomize.py (a table Query reads its partition, not the whole table)',
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    figuresRun: options.figures,
    options,
    durationSeconds: Math.round((performance.now() - started) / 1000),
    sectionSeconds: sections,
    logs: logDir,
    errors,
    figures,
  };
  await writeFile(join(benchDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

  const m = results.machine;
  console.log(`\nkeyplan bench, ${results.date.slice(0, 10)}, ${m.cpu} (${m.cores} cores), Node ${m.node}, moto ${m.moto} (with the bench's Query patch)\n`);
  console.log(formatTable(figures));
  // A figure that is only reported (pass null) is neither met nor missed.
  const judged = figures.filter((f) => f.pass !== null).length;
  const missed = figures.filter((f) => f.pass === false).length;
  const reported = figures.length - judged;
  console.log(
    `\n${judged - missed} of ${judged} figures meet their target${reported > 0 ? ` (${reported} more reported only)` : ''}; ${results.durationSeconds} s in all.`,
  );
  console.log(`Written to bench/results.json (details per figure); logs in ${logDir}.`);
  for (const error of errors) console.log(`\nfigure "${error.figure}" could not be measured: ${error.message}`);
  // Missed targets are findings, not failures; a figure that could not be measured is.
  return errors.length > 0 ? 1 : 0;
}

process.exitCode = await main();
