// Prepares a checkout for `npm start` and `npm test`: npm packages and the Python virtualenv that
// runs the AWS emulator. It runs as prestart/pretest, before node_modules may exist and under
// whatever node is on PATH, so it is plain Node 20 JavaScript with no dependencies.
// Each part is redone only when its input (package-lock.json, the requirements file) changes,
// which a sha256 stamp next to the installed result records; when nothing changed it prints nothing.
// With --browser (pretest) it also finds a Chromium for the console's browser tests, installing
// Debian's package when it can (root and apt-get): nothing downloads a browser at test time.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const lockFile = join(root, 'package-lock.json');
const nodeModules = join(root, 'node_modules');
const npmStamp = join(nodeModules, '.keyplan-lock.sha256');
const requirements = join(root, 'infra', 'local', 'requirements.txt');
const venv = join(root, '.keyplan', 'venv');
const venvPython = join(venv, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
const venvStamp = join(venv, '.keyplan-requirements.sha256');

const browserFile = join(root, '.keyplan', 'browser.json');
/** Where Debian, Ubuntu and Chrome put their browsers; KEYPLAN_CHROMIUM names another. */
const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const readStamp = (file) => (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);
const say = (line) => console.log(`keyplan setup: ${line}`);

function fail(message) {
  console.error(`keyplan setup: ${message}`);
  process.exit(1);
}

function run(command, args, what) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.error || result.status !== 0) {
    fail(`${what} failed (${result.error?.message ?? `exit code ${result.status}`})`);
  }
}

function installNodeModules() {
  const lockHash = sha256(lockFile);
  if (readStamp(npmStamp) === lockHash) return;
  // A checkout installed before this script existed has no stamp. npm writes its hidden lockfile
  // after every install, so one newer than package-lock.json means the install is current, and
  // reinstalling would only pull node_modules from under anything running from it.
  const hidden = join(nodeModules, '.package-lock.json');
  const adoptable =
    !existsSync(npmStamp) && existsSync(hidden) && statSync(hidden).mtimeMs >= statSync(lockFile).mtimeMs;
  if (!adoptable) {
    say(existsSync(nodeModules) ? 'package-lock.json changed, reinstalling npm packages' : 'installing npm packages');
    run('npm', ['ci', '--no-audit', '--no-fund'], 'npm ci');
  }
  writeFileSync(npmStamp, `${lockHash}\n`);
}

function installEmulator() {
  const requirementsHash = sha256(requirements);
  if (existsSync(venvPython) && readStamp(venvStamp) === requirementsHash) return;

  if (!existsSync(venvPython)) {
    const python = process.env.PYTHON ?? 'python3';
    const probe = spawnSync(python, ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      fail(
        `'${python}' was not found. The local AWS emulator (moto) needs Python 3.9 or newer: ` +
          'install python3 (with its venv module), or set PYTHON to a Python 3 interpreter.',
      );
    }
    say(`creating .keyplan/venv with ${probe.stdout.trim() || python}`);
    mkdirSync(dirname(venv), { recursive: true });
    run(python, ['-m', 'venv', venv], `'${python} -m venv' (on Debian/Ubuntu: apt install python3-venv)`);
  }
  say('installing the AWS emulator from infra/local/requirements.txt');
  run(
    venvPython,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements],
    'pip install',
  );
  writeFileSync(venvStamp, `${requirementsHash}\n`);
}

function installBrowser() {
  const find = () => [process.env.KEYPLAN_CHROMIUM, ...CHROMIUM_CANDIDATES].find((path) => path && existsSync(path));
  let found = find();
  const canInstall = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0;
  if (!found && canInstall) {
    say("installing Debian's chromium for the console's browser tests");
    const install = () =>
      spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium'], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      }).status === 0;
    // A fresh machine's package lists may be missing or stale: refresh them once and try again.
    if (!install()) {
      spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'] });
      install();
    }
    found = find();
  }
  mkdirSync(dirname(browserFile), { recursive: true });
  if (!found) {
    // Not fatal here: everything but the browser tests runs, and they say what is missing.
    say(
      'no Chromium found for the browser tests: install one (Debian/Ubuntu: sudo apt install chromium) ' +
        'or set KEYPLAN_CHROMIUM to its executable',
    );
    if (existsSync(browserFile)) writeFileSync(browserFile, '{}\n');
    return;
  }
  const recorded = existsSync(browserFile) ? readFileSync(browserFile, 'utf8') : '';
  const description = `${JSON.stringify({ executablePath: found })}\n`;
  if (recorded !== description) writeFileSync(browserFile, description);
}

installNodeModules();
installEmulator();
if (process.argv.includes('--browser')) installBrowser();
