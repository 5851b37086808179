import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface Emulator {
  /** e.g. http://127.0.0.1:4566 */
  endpoint: string;
  stop(): Promise<void>;
}

export interface EmulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** How long to wait for the emulator to listen; importing moto takes a few seconds when cold. */
  readyTimeoutMs?: number;
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const python = `${root}.keyplan/venv/${process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python'}`;
const script = fileURLToPath(new URL('emulator.py', import.meta.url));
const STDERR_TAIL_CHARS = 2000;

/**
 * Starts moto (infra/local/emulator.py) from the project's virtualenv, which `npm run setup`
 * creates, and resolves once it listens. The emulator is stopped by `stop()`, when this process
 * exits, and (through its stdin closing) when this process is killed outright.
 */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const { port = 0, readyTimeoutMs = 30_000 } = opts;
  if (!existsSync(python)) {
    throw new Error(`The emulator's virtualenv is missing (${python}): run \`npm run setup\` first.`);
  }
  const child = spawn(python, [script, String(port), '--watch-stdin'], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  // Keep reading both pipes for the emulator's whole life: a full pipe would block it.
  let stderrTail = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = (): void => {
    child.kill('SIGTERM');
  };
  process.once('exit', killOnExit);

  const describe = (what: string): Error =>
    new Error(`The AWS emulator ${what}.${stderrTail ? `\n--- emulator stderr (tail) ---\n${stderrTail.trimEnd()}` : ''}`);

  const listeningPort = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(describe(`did not start listening within ${readyTimeoutMs} ms`));
    }, readyTimeoutMs);
    const settle = (): void => {
      clearTimeout(timer);
      child.off('exit', onExit).off('error', onError);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      settle();
      // Let the last stderr chunk arrive: it usually says why (e.g. the port is in use).
      setImmediate(() => reject(describe(`exited before it was ready (${signal ?? `exit code ${code}`})`)));
    };
    const onError = (error: Error): void => {
      settle();
      reject(describe(`could not be started: ${error.message}`));
    };
    child.once('exit', onExit).once('error', onError);
    lines.once('line', (line) => {
      settle();
      try {
        resolve((JSON.parse(line) as { port: number }).port);
      } catch {
        child.kill('SIGKILL');
        reject(describe(`printed an unexpected first line: ${line}`));
      }
    });
  }).catch((error: unknown) => {
    process.off('exit', killOnExit);
    throw error;
  });

  return {
    endpoint: `http://127.0.0.1:${listeningPort}`,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const forced = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(forced);
    },
  };
}

/** Calls a key made on a day, as API Gateway would have metered them. */
export interface MeteredCalls {
  usagePlanId: string;
  keyId: string;
  /** YYYY-MM-DD, UTC */
  date: string;
  calls: number;
}

/**
 * Tells the emulator about calls a key made: nothing calls a stage locally, so GetUsage (and with
 * it the usage route, the CLI and the console's usage chart) reports what it was told here.
 */
export async function meterCalls(endpoint: string, metered: MeteredCalls): Promise<void> {
  const response = await fetch(`${endpoint}/_keyplan/usage`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(metered),
  });
  if (response.status !== 204) throw new Error(`the emulator refused the metered calls: ${response.status} ${await response.text()}`);
}
