import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type AtomicWriteFs, stateFileLocation, writeFileAtomically } from '../../infra/local/state-file';
import { useTempFiles } from '../support/temp-files';

const OLD = '{"apiUrl": "http://127.0.0.1:3999", "stale": true}\n';
const NEW = `${JSON.stringify({ apiUrl: 'http://127.0.0.1:3000', tableName: 'keyplan-local' }, null, 2)}\n`;

/**
 * The real file system, with every call recorded and what the target holds at each call: what a
 * reader of the target could have seen while the write was under way.
 */
function recordingFs(target: string, overrides: Partial<AtomicWriteFs> = {}) {
  const calls: { op: string; paths: string[]; targetHeld: string | undefined }[] = [];
  const held = () => readFile(target, 'utf8').catch(() => undefined);
  const record = async (op: string, ...paths: string[]) => calls.push({ op, paths, targetHeld: await held() });
  const fs: AtomicWriteFs = {
    mkdir: async (path, options) => {
      await record('mkdir', path);
      return mkdir(path, options);
    },
    writeFile: async (path, data) => {
      await record('writeFile', path);
      await (overrides.writeFile ?? writeFile)(path, data);
    },
    rename: async (from, to) => {
      await record('rename', from, to);
      await rename(from, to);
    },
    rm: async (path, options) => {
      await record('rm', path);
      await rm(path, options);
    },
  };
  return { fs, calls };
}

describe('writeFileAtomically', () => {
  const { folder, fileWith } = useTempFiles('state-file');

  it('replaces the file with the new content and leaves no other file beside it', async () => {
    // Prepare
    const target = await fileWith('replaced.json', OLD);

    // Act
    await writeFileAtomically(target, NEW);

    // Assess
    expect(await readFile(target, 'utf8')).toBe(NEW);
    expect((await readdir(folder.path)).filter((name) => name.includes('replaced'))).toEqual(['replaced.json']);
  });

  it('creates the folder the file goes in', async () => {
    // Prepare
    const target = join(folder.path, 'new', '.keyplan', 'local.json');

    // Act
    await writeFileAtomically(target, NEW);

    // Assess
    expect(await readFile(target, 'utf8')).toBe(NEW);
    expect(await readdir(dirname(target))).toEqual(['local.json']);
  });

  it('writes a temporary file in the same folder and renames it over the file, which never holds a part', async () => {
    // Prepare
    const target = await fileWith('atomic.json', OLD);
    const { fs, calls } = recordingFs(target);

    // Act
    await writeFileAtomically(target, NEW, fs);

    // Assess: the content went to another name in the same folder (one file system, so the rename
    // is atomic), and the file held the old content up to the rename, the new one after it
    expect(calls.map(({ op }) => op)).toEqual(['mkdir', 'writeFile', 'rename']);
    const [, written, renamed] = calls;
    const temporary = written?.paths[0] ?? '';
    expect(temporary).not.toBe(target);
    expect(dirname(temporary)).toBe(folder.path);
    expect(renamed?.paths).toEqual([temporary, target]);
    expect(calls.map(({ targetHeld }) => targetHeld)).toEqual([OLD, OLD, OLD]);
    expect(await readFile(target, 'utf8')).toBe(NEW);
  });

  it('leaves the old file and no temporary file when the write fails half way', async () => {
    // Prepare: a disk that fills after half the content
    const target = await fileWith('failed.json', OLD);
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const { fs, calls } = recordingFs(target, {
      writeFile: async (path, data) => {
        await writeFile(path, data.slice(0, data.length / 2));
        throw full;
      },
    });

    // Act
    const result = writeFileAtomically(target, NEW, fs);

    // Assess
    await expect(result).rejects.toBe(full);
    expect(calls.map(({ op }) => op)).toEqual(['mkdir', 'writeFile', 'rm']);
    expect(await readFile(target, 'utf8')).toBe(OLD);
    expect((await readdir(folder.path)).filter((name) => name.includes('failed'))).toEqual(['failed.json']);
  });
});

describe('stateFileLocation', () => {
  it("is the project's .keyplan/local.json, the file the CLI reads", () => {
    // Act
    const location = stateFileLocation({}, '/somewhere/else');

    // Assess
    expect(location).toBe(fileURLToPath(new URL('../../.keyplan/local.json', import.meta.url)));
  });

  it('is KEYPLAN_STATE_FILE when set, relative to the working folder', () => {
    // Act
    const relative = stateFileLocation({ KEYPLAN_STATE_FILE: 'tmp/state.json' }, '/work/there');
    const absolute = stateFileLocation({ KEYPLAN_STATE_FILE: '/tmp/state.json' }, '/work/there');

    // Assess
    expect(relative).toBe('/work/there/tmp/state.json');
    expect(absolute).toBe('/tmp/state.json');
  });
});
