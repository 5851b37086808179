#!/usr/bin/env node
// `npx keyplan`: npm links this file as the project's bin. npx may start it with whatever node is
// first on PATH (the system's may be older than the project's), so it only finds the project's
// own Node 22 (the `node` devDependency) and runs the TypeScript CLI there with tsx. Plain
// JavaScript that any Node 18+ runs, with no dependency of its own.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MINIMUM = [22, 12];

function fail(message) {
  process.stderr.write(`keyplan: ${message}\n`);
  process.exit(2);
}

function projectNode() {
  const own = join(root, 'node_modules', 'node', 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (existsSync(own)) return own;
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > MINIMUM[0] || (major === MINIMUM[0] && minor >= MINIMUM[1])) return process.execPath;
  return fail(
    `needs Node.js ${MINIMUM.join('.')} or newer, found ${process.version}; ` +
      `run \`npm ci\` in ${root} to install the project's own`,
  );
}

let tsx;
try {
  tsx = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
} catch {
  fail(`tsx is not installed: run \`npm ci\` in ${root}`);
}

const child = spawn(projectNode(), ['--import', tsx, join(root, 'cli', 'keyplan.ts'), ...process.argv.slice(2)], {
  stdio: 'inherit',
});
// The CLI decides what a signal means and this process reports how it ended, so a signal is
// passed on rather than acted on here (Ctrl-C reaches both; a second SIGINT changes nothing).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('error', (error) => fail(`could not start Node.js: ${error.message}`));
child.on('exit', (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
