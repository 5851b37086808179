/*
 * `npm run soak`, first part: the concurrency model of test/unit/concurrency-model.test.ts over
 * 100,000 interleavings (KEYPLAN_MODEL_RUNS overrides), with progress on the way. A failure prints
 * fast-check's report (the shrunk scenario, the scheduler's order of calls, what each operation
 * ended with and every change to the world) and the line that replays it; set
 * KEYPLAN_MODEL_SEED and KEYPLAN_MODEL_PATH for this script to replay one case.
 */
import fc from 'fast-check';

// The use cases log every step; 100,000 runs of them are not for reading. Set before the logger's
// first import reads them.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
const { concurrencyProperty, modelParameters } = await import('../support/in-memory-model');

const RUNS = 100_000;
const PROGRESS_EVERY = 10_000;

const parameters = modelParameters(RUNS);
const started = Date.now();
let runs = 0;
const seconds = () => ((Date.now() - started) / 1000).toFixed(0);
console.log(
  process.env.KEYPLAN_MODEL_PATH
    ? `concurrency model: replaying seed ${process.env.KEYPLAN_MODEL_SEED}, path ${process.env.KEYPLAN_MODEL_PATH}`
    : `concurrency model: ${parameters.numRuns} interleavings`,
);
const details = await fc.check(
  concurrencyProperty(() => {
    if (++runs % PROGRESS_EVERY === 0) console.log(`concurrency model: ${runs} interleavings, ${seconds()} s`);
  }),
  parameters,
);
if (details.failed) {
  console.error(await fc.asyncDefaultReportMessage(details));
  const cause = details.errorInstance;
  console.error(`\n${cause instanceof Error ? cause.message : String(cause)}`);
  console.error(
    `\nconcurrency model: FAILED after ${details.numRuns} interleavings. Replay the shrunk case with\n` +
      `  KEYPLAN_MODEL_SEED=${details.seed} KEYPLAN_MODEL_PATH=${details.counterexamplePath} npx vitest run test/unit/concurrency-model.test.ts\n` +
      `(or the same variables before \`npx tsx test/soak/concurrency-model.soak.ts\`)`,
  );
  process.exit(1);
}
console.log(`concurrency model: ${details.numRuns} interleavings kept every invariant (${seconds()} s, seed ${details.seed})`);
