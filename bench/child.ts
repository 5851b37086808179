import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Each measurement runs in a fresh Node process of its own: its environment (table, key prefix,
 * endpoint) cannot leak into the next figure through modules that read process.env once, and its
 * peak memory is its own. The parent passes the input as JSON in BENCH_INPUT and reads the
 * result from the file named by BENCH_RESULT_FILE; the child's stdout (keyplan's structured logs,
 * as a function would write them) goes to a log file, its stderr (progress) to the terminal.
 */

export const benchDir = fileURLToPath(new URL('.', import.meta.url));
export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export interface ChildRun {
  /** Script under bench/, e.g. `calls-per-operation.ts`. */
  script: string;
  input: unknown;
  /** Where the child's stdout goes. */
  logFile: string;
  /** Added to the parent's environment. */
  env?: Record<string, string>;
  /** Node flags before `--import tsx`, e.g. `--expose-gc`. */
  nodeArgs?: string[];
}

export async function runChild<T>(run: ChildRun): Promise<T> {
  const resultFile = `${run.logFile}.result.json`;
  const out = openSync(run.logFile, 'a');
  try {
    const child = spawn(process.execPath, [...(run.nodeArgs ?? []), '--import', 'tsx', join(benchDir, run.script)], {
      cwd: repoRoot,
      env: { ...process.env, ...run.env, BENCH_INPUT: JSON.stringify(run.input), BENCH_RESULT_FILE: resultFile },
      stdio: ['ignore', out, 'inherit'],
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (exitCode) => resolve(exitCode));
    });
    if (code !== 0) throw new Error(`bench/${run.script} exited with ${code} (its log: ${run.logFile})`);
    return JSON.parse(await readFile(resultFile, 'utf8')) as T;
  } finally {
    closeSync(out);
  }
}

/** The child's side: runs `main` on the parent's input and hands its result back. */
export async function childMain<I, O>(main: (input: I) => Promise<O>): Promise<void> {
  const resultFile = process.env.BENCH_RESULT_FILE;
  if (!resultFile) throw new Error('run this through `npm run bench` (BENCH_RESULT_FILE is not set)');
  try {
    const result = await main(JSON.parse(process.env.BENCH_INPUT ?? '{}') as I);
    await writeFile(resultFile, JSON.stringify(result));
    // SDK clients keep sockets alive; the measurement is over, so is the process.
    process.exit(0);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
}

/** A progress line on stderr, which the parent passes through to the terminal. */
export function progress(line: string): void {
  process.stderr.write(`  ${line}\n`);
}
