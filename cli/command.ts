import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Config } from '../shared/config';
import { UsageError } from './failures';
import type { Services } from './services';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** A command line after parsing: the global options every command takes, and its own. */
export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/** What a command's work is given once the stack is chosen. */
export interface CommandContext {
  config: Config;
  services: Services;
  now(): Date;
  /** For progress and notes; stdout is the dispatcher's, but for a command whose output is `streamed`. */
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** For a command that prints as it goes (`events --follow`) and says so with `streamed`. */
  stdout: { write(text: string): unknown };
  /**
   * Aborted on Ctrl-C (SIGINT) or SIGTERM, for a command that runs until then; from this call on,
   * those signals stop the command instead of ending the process.
   */
  interrupted(): AbortSignal;
  /** The local stack of `npm start`, whose emulator may simply not be running. */
  local: boolean;
  /** The deployed stage of `--stage NAME`; none for the environment or the local stack. */
  stage?: string | undefined;
}

export interface CommandOutput {
  /** What `--json` prints: one object, the same shape as the HTTP answer where there is one. */
  json: object;
  /** What a person reads otherwise; ends with a newline. */
  text: string;
  /** 0 unless the operation failed or found problems (see EXIT in failures.ts). */
  exitCode?: number;
  /** Lines for stderr whatever the output format: what went wrong, or what to do next. */
  notes?: string[];
  /** The command wrote its output to stdout as it went: `json` and `text` are not printed. */
  streamed?: boolean;
}

export interface Command {
  name: string;
  /** One line for `keyplan --help`. */
  summary: string;
  /** The command's own --help text, without the global options; `invocation` starts its usage line. */
  help(invocation: string): string;
  options?: OptionSpec;
  /**
   * The function of the stage whose configuration `--stage NAME` reads (serverless.yml's function
   * key); `register` unless the command needs another's (a scheduled job's batch size).
   */
  stageFunction?(args: ParsedArgs): string;
  /**
   * Checks the arguments before anything else happens (throws UsageError or ValidationError) and
   * returns the work, which runs once the stack is chosen.
   */
  parse(args: ParsedArgs): (context: CommandContext) => Promise<CommandOutput>;
}

export const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  stage: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec;

export const GLOBAL_HELP = `Options every command takes
  --json          print the result as one JSON object on stdout, for scripts (a failure too:
                  {"error": {"code", "message", "exitCode", ...}}); messages go to stderr
  --stage NAME    the deployed stack of that stage: its configuration is read from the function
                  keyplan-NAME-register with your AWS credentials and region
  --verbose       keyplan's logs on stderr
  -h, --help      show help

Stack: --stage NAME; else, with TABLE_NAME set, the environment (TABLE_NAME, TIER_MAP,
SENDER_EMAIL, QUEUE_URL, ... and AWS credentials); else the local stack of \`npm start\`
(.keyplan/local.json in this folder or above). The command says which on stderr.

Exit codes: 0 done; 1 the operation failed or found problems; 2 usage or configuration error
(including AWS credentials, access and reachability); 3 not found; 4 busy or throttled: nothing
is lost, run the same command again later.
`;

/** Parses a command's arguments with the global options. */
export function parseCommandArgs(command: Command, argv: readonly string[]): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: { ...GLOBAL_OPTIONS, ...command.options },
    });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** The positionals a command expects, by name; too few or too many is a usage error. */
export function positionals(args: ParsedArgs, names: readonly string[]): string[] {
  const given = args.positionals;
  if (given.length < names.length) throw new UsageError(`no ${names[given.length]} given`);
  if (given.length > names.length) {
    throw new UsageError(`unexpected argument "${given[names.length]}"`);
  }
  return given;
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function requiredOption(args: ParsedArgs, name: string): string {
  const value = stringOption(args, name);
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

export const flag = (args: ParsedArgs, name: string): boolean => args.values[name] === true;

/** A whole number option within bounds, or undefined when absent. */
export function integerOption(args: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const raw = stringOption(args, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * A point in time given as ISO 8601 with a time zone (`2026-06-09T03:00:00Z`,
 * `2026-06-09T05:00+02:00`), or undefined when absent. A time without a zone would mean a
 * different instant on every machine, and an impossible date (February 30) is refused rather than
 * rolled over.
 */
export function instantOption(args: ParsedArgs, name: string): Date | undefined {
  const raw = stringOption(args, name);
  if (raw === undefined) return undefined;
  const problem = `--${name} must be a date and time in ISO 8601 with a time zone, such as 2026-06-09T03:00:00Z, got "${raw}"`;
  const match = INSTANT.exec(raw.trim());
  if (!match) throw new UsageError(problem);
  // The wall-clock time as written must read back the same (JavaScript rolls 02-30 over to 03-02).
  const wall = `${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6] ?? '00'}`;
  const asWritten = new Date(`${wall}Z`);
  const at = new Date(raw.trim().toUpperCase().replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  const real = !Number.isNaN(asWritten.getTime()) && asWritten.toISOString().startsWith(wall) && !Number.isNaN(at.getTime());
  if (!real) throw new UsageError(problem);
  return at;
}

/** Rows as columns padded to the widest cell; for human output only. */
export function table(rows: readonly (readonly string[])[], indent = '  '): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}`)
    .join('\n');
}

/** An ISO timestamp to the minute, for tables. */
export const shortTime = (iso: string | undefined): string => (iso ? `${iso.slice(0, 16).replace('T', ' ')}Z` : '-');

/** "1 key", "2 keys". */
export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
