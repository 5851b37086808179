import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

/** Written by `node scripts/setup.mjs --browser` (npm test's pretest): the Chromium it found or installed. */
const BROWSER_FILE = join(process.cwd(), '.keyplan', 'browser.json');

function chromiumPath(): string {
  const named = process.env.KEYPLAN_CHROMIUM;
  if (named) return named;
  if (existsSync(BROWSER_FILE)) {
    const recorded = (JSON.parse(readFileSync(BROWSER_FILE, 'utf8')) as { executablePath?: string }).executablePath;
    if (recorded && existsSync(recorded)) return recorded;
  }
  throw new Error(
    'the browser tests need Chromium: run `node scripts/setup.mjs --browser` as root on Debian/Ubuntu, ' +
      'install one yourself (sudo apt install chromium), or set KEYPLAN_CHROMIUM to its executable',
  );
}

/**
 * A headless Chromium as a closed network needs it: no sandbox (tests run as root in CI), and none
 * of the background connections (updates, sync, safe browsing) that would otherwise be refused
 * one after another while the page loads.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}
