import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { CsvError, type Options, parse } from 'csv-parse';
import type { ImportRow } from '../shared/provisioning/import-registrations';

export type ImportFormat = 'csv' | 'jsonl';

/** The file cannot be imported at all (missing, unreadable, wrong header): a usage error. */
export class ImportFileError extends Error {
  override readonly name = 'ImportFileError';
}

const REQUIRED_COLUMNS = ['customerId', 'email', 'tier'] as const;
const COLUMNS: readonly string[] = [...REQUIRED_COLUMNS, 'name'];
const SNIFF_BYTES = 64 * 1024;

interface LocatedRecord {
  line: number;
  fields: string[];
}

/**
 * `.csv` is CSV and `.jsonl`/`.ndjson` JSON lines; anything else is JSON lines when its first
 * non-blank character is `{`, CSV otherwise.
 * @throws ImportFileError when the file cannot be opened or is one JSON array
 */
export async function detectFormat(path: string): Promise<ImportFormat> {
  const extension = extname(path).toLowerCase();
  if (extension === '.csv') return 'csv';
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  const head = await readHead(path);
  const first = head.replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '[') {
    throw new ImportFileError(`${path} is a JSON array: write one JSON object per line (JSON lines) instead`);
  }
  return first === '{' ? 'jsonl' : 'csv';
}

/**
 * The data rows of an import file, streamed: the file is never in memory at once. Line numbers are
 * the file's own, 1-based (the CSV header is line 1), so an operator can find a reported row.
 * @throws ImportFileError when the file cannot be read, or a CSV header lacks a required column,
 *   names an unknown one or names one twice
 */
export function readImportFile(path: string, format: ImportFormat): AsyncGenerator<ImportRow> {
  return format === 'csv' ? readCsv(path) : readJsonLines(path);
}

async function* readJsonLines(path: string): AsyncGenerator<ImportRow> {
  const input = openStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line++;
      const text = (line === 1 ? raw.replace(/^\uFEFF/, '') : raw).trim();
      if (!text) continue;
      yield parseJsonLine(line, text);
    }
  } catch (error) {
    throw asFileError(path, error);
  } finally {
    lines.close();
    input.destroy();
  }
}

function parseJsonLine(line: number, text: string): ImportRow {
  try {
    return { line, fields: JSON.parse(text) as unknown };
  } catch (error) {
    return { line, error: `not valid JSON (${error instanceof Error ? error.message : String(error)})` };
  }
}

async function* readCsv(path: string): AsyncGenerator<ImportRow> {
  // csv-parse miscounts lines after a CRLF inside quotes, so lines are counted here, from each
  // record's raw text, in the parser's own (synchronous, in order) callbacks.
  let nextLine = 1;
  const locate = (raw: string | undefined) => {
    const text = raw ?? '';
    const line = nextLine + lineBreaks(/^(?:[ \t]*(?:\r\n|\r|\n))*/.exec(text)?.[0] ?? '');
    nextLine += lineBreaks(text);
    return line;
  };
  // A record the parser cannot read (an unclosed quote) becomes an invalid row instead of ending
  // the import.
  const broken: ImportRow[] = [];
  const options: Options<LocatedRecord, { record: string[]; raw: string }> = {
    bom: true,
    // Only ltrim: when skipping bad records, csv-parse's rtrim silently drops the rest of a chunk
    // at a byte after a closing quote (`"a"b`). Fields are trimmed below instead.
    ltrim: true,
    skip_empty_lines: true,
    relax_quotes: true,
    relax_column_count: true,
    skip_records_with_error: true,
    raw: true,
    on_record: ({ record, raw }) => ({ line: locate(raw), fields: record }),
    on_skip: (error, raw) => {
      const line = locate(raw);
      if (error) broken.push(brokenRecord(error, line, nextLine - 1));
      return undefined;
    },
  };
  // csv-parse's typings only let on_record change the record type together with `columns`.
  const parser = parse(options as unknown as Options);
  const source = openStream(path);
  // A read error of the file (missing, unreadable) does not reach the parser on its own.
  source.on('error', (error) => parser.destroy(error));
  source.pipe(parser);

  let columns: string[] | undefined;
  try {
    for await (const { line, fields: record } of parser as AsyncIterable<LocatedRecord>) {
      yield* broken.splice(0);
      if (!columns) {
        columns = headerColumns(path, record);
        continue;
      }
      // A spreadsheet's trailing ",,," rows are as blank as an empty line.
      if (record.every((value) => value.trim() === '')) continue;
      if (record.length > columns.length) {
        yield { line, error: `has ${record.length} fields, the header names ${columns.length}` };
        continue;
      }
      const fields: Record<string, string> = {};
      record.forEach((value, index) => {
        const trimmed = value.trim();
        // An empty cell is no value: an optional name may be left blank.
        if (trimmed !== '') fields[columns?.[index] ?? ''] = trimmed;
      });
      yield { line, fields };
    }
    yield* broken.splice(0);
  } catch (error) {
    throw asFileError(path, error);
  } finally {
    source.destroy();
    parser.destroy();
  }
  if (!columns) throw new ImportFileError(`${path} has no header row (expected ${COLUMNS.join(',')})`);
}

/** Maps header names to the request's fields; case-insensitive, since spreadsheets change case. */
function headerColumns(path: string, header: string[]): string[] {
  const columns = header.map((cell) => {
    const name = cell.trim();
    const column = COLUMNS.find((known) => known.toLowerCase() === name.toLowerCase());
    if (!column) {
      throw new ImportFileError(
        `${path}: unknown column "${name}" in the header (expected ${COLUMNS.join(',')}, name optional)`,
      );
    }
    return column;
  });
  const twice = columns.find((column, index) => columns.indexOf(column) !== index);
  if (twice) throw new ImportFileError(`${path}: column "${twice}" appears twice in the header`);
  const missing = REQUIRED_COLUMNS.filter((column) => !columns.includes(column));
  if (missing.length > 0) {
    throw new ImportFileError(`${path}: the header lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
  return columns;
}

function lineBreaks(text: string): number {
  return text.match(/\r\n|\r|\n/g)?.length ?? 0;
}

function brokenRecord(error: CsvError, line: number, lastLine: number): ImportRow {
  if (error.code === 'CSV_QUOTE_NOT_CLOSED') {
    return {
      line,
      error: `not valid CSV: a quote opened on this line is never closed, so lines ${line}-${Math.max(line, lastLine)} could not be read`,
    };
  }
  return { line, error: `not valid CSV (${error.message})` };
}

function openStream(path: string) {
  return createReadStream(path, { encoding: 'utf8' });
}

async function readHead(path: string): Promise<string> {
  let file;
  try {
    file = await open(path, 'r');
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await file.read(buffer, 0, SNIFF_BYTES, 0);
    return buffer.toString('utf8', 0, bytesRead);
  } catch (error) {
    throw asFileError(path, error);
  } finally {
    await file?.close();
  }
}

function asFileError(path: string, error: unknown): unknown {
  if (error instanceof ImportFileError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof CsvError) return new ImportFileError(`${path}: not valid CSV (${error.message})`, { cause: error });
  if (code === 'ENOENT') return new ImportFileError(`${path}: no such file`, { cause: error });
  if (code === 'EISDIR') return new ImportFileError(`${path} is a directory`, { cause: error });
  if (code === 'EACCES') return new ImportFileError(`${path}: permission denied`, { cause: error });
  if (typeof code === 'string' && code.startsWith('E')) {
    return new ImportFileError(`${path} cannot be read (${code})`, { cause: error });
  }
  return error;
}
