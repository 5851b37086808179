// The state file `npm start` leaves for scripts and the CLI: what the local stack is and where.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The file operations writeFileAtomically needs; a test passes a recording fake. */
export interface AtomicWriteFs {
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  writeFile(path: string, data: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: true }): Promise<void>;
}

const nodeFs: AtomicWriteFs = { mkdir, writeFile, rename, rm };

const DEFAULT_STATE_FILE = fileURLToPath(new URL('../../.keyplan/local.json', import.meta.url));

/**
 * Where `npm start` writes its state: KEYPLAN_STATE_FILE (relative to `cwd`) if set, so a test can
 * start the service without replacing a developer's file; otherwise the project's
 * .keyplan/local.json, the one the CLI reads.
 */
export function stateFileLocation(env: NodeJS.ProcessEnv, cwd: string): string {
  const override = env.KEYPLAN_STATE_FILE;
  return override ? resolve(cwd, override) : DEFAULT_STATE_FILE;
}

/**
 * Replaces `path` with `content` so that a reader finds the old file or the new one, never a part
 * of it: the content goes to a temporary file in the same folder (a rename is atomic only within
 * one file system), which is then renamed over `path`. A failed write leaves `path` as it was and
 * removes the temporary file. Not fsync'd: this is about readers of a live file, not about a
 * power cut.
 *
 * @throws what the file system throws, after cleaning up
 */
export async function writeFileAtomically(path: string, content: string, fs: AtomicWriteFs = nodeFs): Promise<void> {
  const folder = dirname(path);
  await fs.mkdir(folder, { recursive: true });
  // Dot-named and unique per writer, so no two writers share one and a reader that looks for
  // `path` never sees it.
  const temporary = join(folder, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await fs.writeFile(temporary, content);
    await fs.rename(temporary, path);
  } catch (error) {
    await fs.rm(temporary, { force: true });
    throw error;
  }
}
