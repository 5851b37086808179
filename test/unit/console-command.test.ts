import { createServer } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { type CliIo, runKeyplan } from '../../cli/run-keyplan';
import { servicesOverWorld } from '../support/console-fakes';
import { aRegisteredCustomer, aWorld } from '../support/in-memory-fixtures';
import { TIER_MAP } from '../support/in-memory-model';
import type { InMemoryWorld } from '../support/in-memory-world';

const ENV = { TABLE_NAME: 'keyplan-prod', TIER_MAP: JSON.stringify(TIER_MAP), SENDER_EMAIL: 'keys@example.com', AWS_REGION: 'eu-west-1' };

/**
 * `keyplan console ARGV` over the world; `whileServing` runs with the printed URL, then Ctrl-C.
 */
async function keyplanConsole(argv: string[], world: InMemoryWorld, whileServing: (url: string) => Promise<void> = async () => undefined) {
  let stdout = '';
  let stderr = '';
  let stop: (() => void) | undefined;
  let served: Promise<void> | undefined;
  const stopListening = vi.fn();
  const io: CliIo = {
    argv: ['console', ...argv],
    env: { ...ENV },
    cwd: '/',
    stdout: {
      write: (text: string) => {
        stdout += text;
        served = whileServing(text.trim()).finally(() => stop?.());
      },
    },
    stderr: { write: (text: string) => (stderr += String(text)), isTTY: false } as unknown as CliIo['stderr'],
    services: () => servicesOverWorld(world),
    now: world.clock,
    onInterrupt: (onStop) => {
      stop = onStop;
      return stopListening;
    },
  };
  const code = await runKeyplan(io);
  await served;
  return { code, stdout, stderr, stopListening };
}

describe('keyplan console', () => {
  it('prints the URL with its token, serves the console there until Ctrl-C, then exits 0', async () => {
    const world = aWorld();
    await aRegisteredCustomer(world, 'c1');
    const statuses: number[] = [];

    const run = await keyplanConsole([], world, async (url) => {
      statuses.push((await fetch(url)).status, (await fetch(new URL('/', url))).status);
    });

    expect(run.stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}\n$/);
    expect(statuses).toEqual([200, 403]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('Ctrl-C stops');
    expect(run.stopListening).toHaveBeenCalled();
  });

  it('says a port in use is a usage error', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;

    const run = await keyplanConsole(['--port', String(port)], aWorld());
    taken.close();

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`port ${port} is in use`);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('has help that names the pages and the token', async () => {
    const run = await keyplanConsole(['--help'], aWorld());

    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: keyplan console [--port N] [--stage NAME]');
    expect(run.stdout).toContain('session token');
  });

  it('refuses a port out of range', async () => {
    const run = await keyplanConsole(['--port', '70000'], aWorld());

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--port must be a whole number from 0 to 65535');
  });
});
