import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../../infra/local/bootstrap';
import { type Emulator, startEmulator } from '../../../infra/local/emulator';
import { useTempFiles } from '../../support/temp-files';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const HOST = '127.0.0.1';
const STALE = `${JSON.stringify({ apiUrl: `http://${HOST}:1`, endpoint: 'http://127.0.0.1:2', stale: true })}\n`;
const BOOT_DEADLINE_MS = 45_000;

interface LocalService {
  child: ChildProcess;
  /** What it printed so far, for a failure's message. */
  output(): string;
  /** Its exit code, once it exits. */
  exited: Promise<number | null>;
}

const { folder } = useTempFiles('start');
// `npm start` polls the default queue and the table's stream: against the emulator the other test
// files share it would take their messages. So this file gives it an emulator of its own.
let emulator: Emulator;
const running = new Set<LocalService>();
const servers = new Set<Server>();

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
});

afterEach(async () => {
  for (const service of running) await stop(service);
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  servers.clear();
});

afterAll(async () => {
  await emulator.stop();
});

/** infra/local/start.ts as `npm start` runs it, on PORT, with its state file where the test says. */
function startLocal(port: number, stateFile: string): LocalService {
  const { KEYPLAN_SHARDS: _shards, ...env } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'infra/local/start.ts'], {
    cwd: root,
    env: { ...env, PORT: String(port), AWS_ENDPOINT_URL: emulator.endpoint, KEYPLAN_STATE_FILE: stateFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  }
  const service: LocalService = {
    child,
    output: () => output,
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  running.add(service);
  return service;
}

/** Ctrl-C's twin: start.ts stops what it started and exits 0. */
async function stop(service: LocalService): Promise<number | null> {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGTERM');
  const code = await service.exited;
  running.delete(service);
  return code;
}

async function plantStaleStateFile(name: string): Promise<string> {
  const stateFile = join(folder.path, name, 'local.json');
  await mkdir(join(folder.path, name), { recursive: true });
  await writeFile(stateFile, STALE);
  return stateFile;
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, HOST);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

async function listenOnFreePort(): Promise<Server> {
  const server = createServer();
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return server;
}

async function freePort(): Promise<number> {
  const server = await listenOnFreePort();
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  servers.delete(server);
  return port;
}

/** Polls until `probe` returns a value, failing with the service's output if it exits first. */
async function waitFor<T>(service: LocalService, what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + BOOT_DEADLINE_MS;
  while (Date.now() < deadline) {
    const found = await probe();
    if (found !== undefined) return found;
    if (service.child.exitCode !== null) break;
    await sleep(20);
  }
  throw new Error(`npm start never got to ${what} (exit code ${service.child.exitCode}):\n${service.output()}`);
}

describe('npm start (infra/local/start.ts)', () => {
  it("has this run's state file, whole, in place when its port opens", async () => {
    // Prepare: a state file left by an earlier run
    const stateFile = await plantStaleStateFile('fixed-port');
    const port = await freePort();
    const service = startLocal(port, stateFile);

    // Act: what a script does: wait for the port, then read the file at once
    await waitFor(service, `open port ${port}`, async () => ((await accepts(port)) ? true : undefined));
    const text = await readFile(stateFile, 'utf8');

    // Assess: the current stack, naming the port that answered; nothing but the file in its folder
    const local = JSON.parse(text) as LocalStack & { stale?: boolean };
    expect(local, `npm start said:\n${service.output()}`).toMatchObject({
      apiUrl: `http://${HOST}:${port}`,
      endpoint: emulator.endpoint,
      tableName: 'keyplan-local',
    });
    expect(local).not.toHaveProperty('stale');
    expect(await readdir(join(folder.path, 'fixed-port'))).toEqual(['local.json']);
    expect((await fetch(`${local.apiUrl}/registrations/no-such-registration`)).status).toBe(404);
    expect(await stop(service)).toBe(0);
  });

  it('with PORT=0 writes the file, whole, once the port is open, and the port it names answers', async () => {
    // Prepare
    const stateFile = await plantStaleStateFile('port-zero');
    const service = startLocal(0, stateFile);

    // Act: a script waits for the file instead (the earlier run's is removed first)
    const text = await waitFor(service, 'write its state file', async () => {
      const found = await readFile(stateFile, 'utf8').catch(() => undefined);
      return found === STALE ? undefined : found;
    });

    // Assess: parseable at first sight (written whole), and its port is already open
    const local = JSON.parse(text) as LocalStack;
    expect(local, `npm start said:\n${service.output()}`).toMatchObject({ endpoint: emulator.endpoint, tableName: 'keyplan-local' });
    const port = Number(new URL(local.apiUrl ?? '').port);
    expect(port).toBeGreaterThan(0);
    expect(await accepts(port)).toBe(true);
    expect(await stop(service)).toBe(0);
  });

  it('on a port in use says so, exits 1 and leaves no state file, neither the earlier one nor its own', async () => {
    // Prepare
    const stateFile = await plantStaleStateFile('port-in-use');
    const taken = await listenOnFreePort();
    const { port } = taken.address() as AddressInfo;

    // Act
    const service = startLocal(port, stateFile);
    const code = await service.exited;

    // Assess
    expect(code, `npm start said:\n${service.output()}`).toBe(1);
    expect(service.output()).toContain(`keyplan: could not start: Port ${port} is in use: stop what uses it, or set PORT to another port.`);
    await expect(access(stateFile)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(join(folder.path, 'port-in-use'))).toEqual([]);
  });
});
