// Figure 3: cold start. Every function is bundled as the deploy bundles it; so is its own baseline,
// which only imports and constructs, with the SDK alone, the clients that function's composition
// builds (read from the sources in its bundle, checked against the SDK packages in it). Sizes are
// compared, and the module init time of each (a fresh `node` per sample, as Lambda's init would
// be) is sampled interleaved with the baselines'.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type Bundle,
  bundleBaseline,
  bundleFunction,
  bytesOverBaseline,
  bytesOverBaselineByPart,
  clientFactoriesOf,
  readDeploySettings,
} from './bundles';
import { benchDir, childMain, progress } from './child';
import { figureStack } from './figure-stack';
import { figure, type Figure, median, round } from './stats';

const run = promisify(execFile);

interface ColdStartInput {
  endpoint: string;
  /** Fresh processes per bundle. */
  runs: number;
  /** Where the bundles go. */
  outDir: string;
}

async function measureColdStart({ endpoint, runs, outDir }: ColdStartInput): Promise<Figure[]> {
  const settings = await readDeploySettings();
  const bundles = new Map<string, Bundle>();
  const factoriesOf = new Map<string, string[]>();
  for (const { name, entry } of settings.functions) {
    const bundle = await bundleFunction(settings, entry, join(outDir, name));
    bundles.set(name, bundle);
    factoriesOf.set(name, await clientFactoriesOf(bundle));
  }

  // Each function against a baseline of its own clients; functions that build the same clients
  // share one bundle of it (it is the same file).
  const baselines = new Map<string, Bundle>();
  const keyOf = (name: string) => factoriesOf.get(name)!.join(' ');
  for (const name of bundles.keys()) {
    if (!baselines.has(keyOf(name))) {
      const file = join(outDir, `baseline-${baselines.size + 1}`, `baseline${settings.outExtension}`);
      baselines.set(keyOf(name), await bundleBaseline(settings, factoriesOf.get(name)!, file));
    }
  }
  const baselineOf = (name: string) => baselines.get(keyOf(name))!;
  progress(`${bundles.size} functions and ${baselines.size} baselines bundled`);

  // The environment a deployed function starts with: its configuration and Lambda's NODE_OPTIONS.
  const { env } = await figureStack(endpoint, 'cold-start');
  const probeEnv = { ...process.env, ...env, NODE_OPTIONS: settings.nodeOptions };
  const probe = async (file: string): Promise<number> => {
    const { stdout } = await run(process.execPath, [join(benchDir, 'init-probe.mjs'), file], { env: probeEnv });
    return (JSON.parse(stdout) as { ms: number }).ms;
  };

  const samples = new Map<string, number[]>();
  const subjects = [...[...baselines.values()].map((b) => b.file), ...[...bundles.values()].map((b) => b.file)];
  for (let round_ = 0; round_ < runs; round_++) {
    // Each round runs every bundle once, starting one further along, so no bundle always runs
    // first (or right after the same neighbour) on a machine whose load drifts.
    for (let i = 0; i < subjects.length; i++) {
      const file = subjects[(i + round_) % subjects.length]!;
      const list = samples.get(file) ?? [];
      list.push(await probe(file));
      samples.set(file, list);
    }
    if ((round_ + 1) % 5 === 0) progress(`${round_ + 1}/${runs} rounds of ${subjects.length} processes`);
  }
  const medianOf = (bundle: Bundle) => median(samples.get(bundle.file) ?? []);

  const figures: Figure[] = [];
  for (const [name, bundle] of bundles) {
    const baseline = baselineOf(name);
    const parts = bytesOverBaselineByPart(bundle, baseline);
    figures.push(
      figure({
        id: `bundle.${name}.size`,
        group: 3,
        label: `Bundle size: ${name}`,
        unit: 'KiB',
        value: round(bundle.bytes / 1024, 1),
        baseline: round(baseline.bytes / 1024, 1),
        target: { of: 'ratio', op: '<=', limit: 1.15, source: 'issue' },
        details: {
          bytes: bundle.bytes,
          baselineBytes: baseline.bytes,
          sourceMapBytes: bundle.mapBytes,
          clients: bundle.clientPackages,
          clientFactories: factoriesOf.get(name),
          bytesOverBaselineByPart: parts,
          bytesOverBaseline: bytesOverBaseline(bundle, baseline),
        },
      }),
      figure({
        id: `bundle.${name}.init`,
        group: 3,
        label: `Init time: ${name}`,
        unit: 'ms',
        value: round(medianOf(bundle), 2),
        baseline: round(medianOf(baseline), 2),
        target: { of: 'ratio', op: '<=', limit: 1.15, source: 'issue' },
        details: {
          runs,
          nodeOptions: settings.nodeOptions,
          samplesMs: (samples.get(bundle.file) ?? []).map((ms) => round(ms, 2)),
          baselineSamplesMs: (samples.get(baseline.file) ?? []).map((ms) => round(ms, 2)),
        },
      }),
    );
    const over = Object.entries(parts).map(([part, bytes]) => `${part} ${round(bytes / 1024, 1)}`);
    progress(`${name}: ${round((bundle.bytes - baseline.bytes) / 1024, 1)} KiB over its baseline (${over.join(', ')})`);
  }
  for (const [key, baseline] of baselines) {
    progress(`baseline (${key}): ${round(baseline.bytes / 1024, 1)} KiB, init ${round(medianOf(baseline), 1)} ms`);
  }
  return figures;
}

await childMain(measureColdStart);
