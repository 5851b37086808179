import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectFormat, ImportFileError, type ImportFormat, readImportFile } from '../../cli/import-file';
import type { ImportRow } from '../../shared/provisioning/import-registrations';
import { useTempFiles } from '../support/temp-files';

const { folder, fileWith } = useTempFiles('import-file');

async function rowsOf(path: string, format: ImportFormat): Promise<ImportRow[]> {
  const rows: ImportRow[] = [];
  for await (const row of readImportFile(path, format)) rows.push(row);
  return rows;
}

describe('detectFormat', () => {
  it.each([
    ['rows.csv', '{"looks":"like json"}', 'csv'],
    ['rows.CSV', '', 'csv'],
    ['rows.jsonl', 'customerId,email,tier', 'jsonl'],
    ['rows.ndjson', '', 'jsonl'],
    ['rows.txt', '\uFEFF \n\n  {"customerId":"c-1"}', 'jsonl'],
    ['rows', 'customerId,email,tier\n', 'csv'],
  ])('reads %s with %j as %s', async (name, content, expected) => {
    // Prepare
    const path = await fileWith(name, content);

    // Act
    const format = await detectFormat(path);

    // Assess
    expect(format).toBe(expected);
  });

  it('refuses a JSON array, which is not JSON lines', async () => {
    // Prepare
    const path = await fileWith('array.json', '[{"customerId":"c-1"}]');

    // Act
    const act = detectFormat(path);

    // Assess
    await expect(act).rejects.toThrow(/JSON array/);
  });

  it('refuses a file that does not exist, as a file error', async () => {
    // Act
    const act = detectFormat(join(folder.path, 'missing.txt'));

    // Assess
    await expect(act).rejects.toBeInstanceOf(ImportFileError);
    await expect(act).rejects.toThrow(/no such file/);
  });
});

describe('readImportFile (CSV)', () => {
  it('numbers rows by file line (header = 1), skips blank lines and trims fields', async () => {
    // Prepare
    const path = await fileWith(
      'basic.csv',
      'customerId,email,tier,name\n\nc-1, ada@example.com ,free,\n  \nc-2,bob@example.com,pro, Bob \n,,,\n',
    );

    // Act
    const rows = await rowsOf(path, 'csv');

    // Assess
    expect(rows).toEqual([
      { line: 3, fields: { customerId: 'c-1', email: 'ada@example.com', tier: 'free' } },
      { line: 5, fields: { customerId: 'c-2', email: 'bob@example.com', tier: 'pro', name: 'Bob' } },
    ]);
  });

  it('reads quoted fields with commas, doubled quotes and line breaks, numbering by the first line', async () => {
    // Prepare
    const path = await fileWith(
      'quoted.csv',
      'customerId,email,tier,name\r\n"c-1","ada@example.com","free","Lovelace, Ada"\r\n' +
        'c-2,bob@example.com,free,"Robert ""Bob""\r\nSmith"\r\nc-3,cy@example.com,free,Cy "the" Third\r\n',
    );

    // Act
    const rows = await rowsOf(path, 'csv');

    // Assess
    expect(rows).toEqual([
      { line: 2, fields: { customerId: 'c-1', email: 'ada@example.com', tier: 'free', name: 'Lovelace, Ada' } },
      { line: 3, fields: { customerId: 'c-2', email: 'bob@example.com', tier: 'free', name: 'Robert "Bob"\r\nSmith' } },
      { line: 5, fields: { customerId: 'c-3', email: 'cy@example.com', tier: 'free', name: 'Cy "the" Third' } },
    ]);
  });

  it('keeps line numbers right across read chunks in a large file with CRLF and multi-line fields', async () => {
    // Prepare: ~300 KB, so the parser sees several chunks; every 7th name spans two lines.
    const physical = ['customerId,email,tier,name'];
    const expected: number[] = [];
    for (let n = 1; n <= 3000; n++) {
      expected.push(physical.length + 1);
      if (n % 7 === 0) physical.push(`c-${n},c${n}@example.com,free,"Customer`, `number ${n}"`);
      else physical.push(`c-${n},c${n}@example.com,free,Customer number ${n} ${'x'.repeat(50)}`);
      if (n % 11 === 0) physical.push('');
    }
    const path = await fileWith('large.csv', `${physical.join('\r\n')}\r\n`);

    // Act
    const rows = await rowsOf(path, 'csv');

    // Assess
    expect(rows).toHaveLength(3000);
    expect(rows.map((row) => row.line)).toEqual(expected);
  });

  it('accepts columns in any order and case, without the optional name, after a byte order mark', async () => {
    // Prepare
    const path = await fileWith('order.csv', '\uFEFFTier,CUSTOMERID,Email\nfree,c-1,ada@example.com\n');

    // Act
    const rows = await rowsOf(path, 'csv');

    // Assess
    expect(rows).toEqual([{ line: 2, fields: { customerId: 'c-1', email: 'ada@example.com', tier: 'free' } }]);
  });

  it('makes a row with too many fields, or a broken quote, an invalid row and reads on', async () => {
    // Prepare
    const path = await fileWith(
      'broken.csv',
      'customerId,email,tier\nc-1,ada@example.com,free,extra\nc-2,"bad"x,free\nc-3,cy@example.com,free\n' +
        'c-4,"never closed,free\nc-5,eve@example.com,free\n',
    );

    // Act
    const rows = await rowsOf(path, 'csv');

    // Assess
    expect(rows).toEqual([
      { line: 2, error: 'has 4 fields, the header names 3' },
      // Kept as written: validation then names the field.
      { line: 3, fields: { customerId: 'c-2', email: '"bad"x', tier: 'free' } },
      { line: 4, fields: { customerId: 'c-3', email: 'cy@example.com', tier: 'free' } },
      { line: 5, error: expect.stringMatching(/quote opened on this line is never closed, so lines 5-6/) },
    ]);
  });

  it.each([
    ['an unknown column', 'customerId,email,tier,plan\nc-1,ada@example.com,free,x\n', /unknown column "plan"/],
    ['a missing column', 'customerId,email\nc-1,ada@example.com\n', /lacks the column tier/],
    ['a column twice', 'customerId,email,tier,email\n', /"email" appears twice/],
    ['no header at all', '\n\n', /no header row/],
  ])('refuses a file with %s as a file error', async (_case, content, message) => {
    // Prepare
    const path = await fileWith('header.csv', content);

    // Act
    const act = rowsOf(path, 'csv');

    // Assess
    await expect(act).rejects.toBeInstanceOf(ImportFileError);
    await expect(act).rejects.toThrow(message);
  });

  it('refuses a missing file as a file error', async () => {
    // Act
    const act = rowsOf(join(folder.path, 'missing.csv'), 'csv');

    // Assess
    await expect(act).rejects.toThrow(ImportFileError);
  });
});

describe('readImportFile (JSON lines)', () => {
  it('numbers rows by file line, skips blank lines, and makes a bad line an invalid row', async () => {
    // Prepare
    const path = await fileWith(
      'rows.jsonl',
      '\uFEFF{"customerId":"c-1","email":"ada@example.com","tier":"free"}\n\n' +
        '{"customerId":"c-2",\n   \r\n[1]\n {"customerId":"c-3","extra":true} \r\n',
    );

    // Act
    const rows = await rowsOf(path, 'jsonl');

    // Assess: shape is checked by validation, not by the reader.
    expect(rows).toEqual([
      { line: 1, fields: { customerId: 'c-1', email: 'ada@example.com', tier: 'free' } },
      { line: 3, error: expect.stringMatching(/^not valid JSON/) },
      { line: 5, fields: [1] },
      { line: 6, fields: { customerId: 'c-3', extra: true } },
    ]);
  });

  it('refuses a missing file as a file error', async () => {
    // Act
    const act = rowsOf(join(folder.path, 'missing.jsonl'), 'jsonl');

    // Assess
    await expect(act).rejects.toThrow(ImportFileError);
  });
});
