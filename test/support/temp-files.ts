import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * A temporary folder for the calling test file, removed after it: `folder.path` once the file's
 * tests run, and `fileWith` to write a file into it.
 */
export function useTempFiles(prefix: string) {
  const folder = { path: '' };
  beforeAll(async () => {
    folder.path = await mkdtemp(join(tmpdir(), `keyplan-${prefix}-`));
  });
  afterAll(async () => {
    await rm(folder.path, { recursive: true, force: true });
  });
  const fileWith = async (name: string, content: string): Promise<string> => {
    const path = join(folder.path, name);
    await writeFile(path, content);
    return path;
  };
  return { folder, fileWith };
}
