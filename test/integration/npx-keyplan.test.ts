import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useTempFiles } from '../support/temp-files';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

/** PATH without the node_modules/.bin folders npm and vitest put first (the project's Node 22). */
const systemPath = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => dir && !dir.split(/[\\/]/).includes('node_modules'));

/** The first `node` on the system's PATH, if it is older than the project's Node 22. */
async function olderSystemNode(): Promise<{ dir: string; version: string } | undefined> {
  for (const dir of systemPath) {
    const node = join(dir, process.platform === 'win32' ? 'node.exe' : 'node');
    if (!existsSync(node)) continue;
    const { stdout } = await run(node, ['--version']);
    const version = stdout.trim();
    return Number(version.slice(1).split('.')[0]) < 22 ? { dir, version } : undefined;
  }
  return undefined;
}

// Found while the file is collected, so that a machine without an older node reports the test as
// skipped (its title says when) rather than passing it without running npx under one.
const older = await olderSystemNode();

describe('npx keyplan', () => {
  const { folder } = useTempFiles('npx');

  it.skipIf(older === undefined)(
    "prints its help and no npm engine warning under the system's node older than 22 (skipped if it is 22 or newer)",
    async () => {
      // Prepare: a new user's shell: the system's node first, no npm settings from a parent npm,
      // and an empty npm cache, so npx makes its first-run link of the project (where npm checks
      // `engines`) rather than reuse one from an earlier run
      const { dir, version } = older ?? { dir: '', version: '' };
      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
      Object.assign(env, {
        PATH: [dir, ...systemPath].join(delimiter),
        npm_config_cache: join(folder.path, 'npm-cache'),
        // Linking the project needs no registry; offline, the test never asks one.
        npm_config_offline: 'true',
        npm_config_update_notifier: 'false',
      });

      // Act
      const { stdout, stderr } = await run('npx', ['keyplan', '--help'], { cwd: root, env });

      // Assess
      expect(stdout).toMatch(/^Usage: keyplan COMMAND/);
      expect(stderr, `npx under ${version}`).not.toMatch(/EBADENGINE|Unsupported engine/i);
    },
  );
});
