import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { z } from 'zod';
import { functionEnvironment } from '../infra/local/bootstrap';
import { createAwsClients } from '../shared/aws/clients';
import { type Config, ConfigError, loadConfig } from '../shared/config';
import { createEnqueueDeps } from '../shared/provisioning/compose';
import {
  type ImportDeps,
  type ImportProgress,
  type ImportSummary,
  importRegistrations,
} from '../shared/provisioning/import-registrations';
import { detectFormat, ImportFileError, readImportFile } from './import-file';

export const USAGE = `Usage: npm run import -- FILE [--json] [--concurrency N]

Queues a registration for every row of FILE; the provisioning worker then creates and emails
the keys. Each row's customer id is its idempotency key, so importing a file again creates
nothing new.

FILE  CSV with a header row customerId,email,tier[,name], or JSON lines (one
      {"customerId", "email", "tier", "name"?} object per line). .csv is CSV, .jsonl and
      .ndjson are JSON lines; otherwise a file whose first character is "{" is JSON lines.

Options
  --json            print the summary as one JSON object on stdout
  --concurrency N   rows in flight at once, 1-32 (default 8)
  -h, --help        show this help

Stack: with TABLE_NAME set, the environment (TABLE_NAME, TIER_MAP, SENDER_EMAIL, QUEUE_URL and
AWS credentials); otherwise the local stack of \`npm start\` (.keyplan/local.json).

Exit codes: 0 every row queued, requeued or skipped; 1 some row invalid or failed;
2 usage or configuration error, or the import stopped early.
`;

export const EXIT = { ok: 0, rowsNotQueued: 1, usage: 2 } as const;

export interface ImportCommandIo {
  argv: readonly string[];
  /** Written to in local mode: the AWS SDK reads its endpoint and credentials from it. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: { write(text: string): unknown };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** The composition root's seam for tests; by default real AWS clients from the config. */
  createDeps?: (config: Config) => { deps: ImportDeps; close(): void };
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

const LOCAL_STACK_FILE = '.keyplan/local.json';

const localStackSchema = z.object({
  endpoint: z.string().min(1),
  region: z.string().min(1),
  tableName: z.string().min(1),
  queueUrl: z.string().min(1),
  dlqUrl: z.string(),
  restApiId: z.string(),
  stage: z.string(),
  usagePlans: z.record(z.string(), z.string()),
  sender: z.string().min(1),
});

/** `npm run import -- FILE`: the operator's bulk import. Returns the exit code. */
export async function runImportCommand(io: ImportCommandIo): Promise<number> {
  try {
    return await run(io);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError || error instanceof ImportFileError) {
      // An operator's mistake: the message says what to fix, a stack trace would only bury it.
      io.stderr.write(`keyplan import: ${error.message}\n`);
      if (error instanceof UsageError) io.stderr.write('Run with --help for usage.\n');
      return EXIT.usage;
    }
    io.stderr.write(`keyplan import: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.usage;
  }
}

async function run(io: ImportCommandIo): Promise<number> {
  const args = parseArguments(io.argv);
  if (args.help) {
    io.stdout.write(USAGE);
    return EXIT.ok;
  }

  const { config, source, local } = await resolveConfig(io);
  io.stderr.write(`keyplan import: using ${source}\n`);

  const file = args.file;
  const format = await detectFormat(file);
  // A first pass counts the rows for the progress bar and finds a bad header before anything is
  // written; it streams, like the import itself.
  let total = 0;
  for await (const _row of readImportFile(file, format)) total++;

  const { deps, close } = (io.createDeps ?? realDeps)(config);
  const progress = progressReporter(io.stderr, total);
  let summary: ImportSummary;
  try {
    summary = await importRegistrations(readImportFile(file, format), deps, {
      concurrency: args.concurrency,
      onProgress: progress.update,
    });
  } finally {
    progress.stop();
    close();
  }

  io.stdout.write(args.json ? `${JSON.stringify({ file, format, ...summary })}\n` : formatSummary(file, summary));
  if (summary.stopped) {
    const hint = local ? ' Is `npm start` running?' : '';
    io.stderr.write(
      `keyplan import: stopped at line ${summary.stopped.line} after ${summary.rows} of ${total} rows: ` +
        `${summary.stopped.reason}.${hint} Running the import again is safe.\n`,
    );
    return EXIT.usage;
  }
  return summary.counts.invalid + summary.counts.failed > 0 ? EXIT.rowsNotQueued : EXIT.ok;
}

function parseArguments(argv: readonly string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        concurrency: { type: 'string' },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true as const };
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'no FILE given' : `one FILE expected, got ${positionals.length}`);
  }
  const concurrency = values.concurrency === undefined ? 8 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) {
    throw new UsageError(`--concurrency must be a whole number from 1 to 32, got "${values.concurrency}"`);
  }
  return { help: false as const, file: positionals[0] ?? '', json: values.json, concurrency };
}

async function resolveConfig(io: ImportCommandIo): Promise<{ config: Config; source: string; local: boolean }> {
  if (io.env.TABLE_NAME) {
    const config = loadConfig(io.env);
    const region = io.env.AWS_REGION ?? io.env.AWS_DEFAULT_REGION ?? 'the default region';
    return { config, source: `the environment: table ${config.tableName} in ${region}`, local: false };
  }
  const path = resolve(io.cwd, LOCAL_STACK_FILE);
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch {
    throw new ConfigError(
      `TABLE_NAME is not set and there is no ${LOCAL_STACK_FILE}: run \`npm start\` for the local stack, ` +
        'or export TABLE_NAME, TIER_MAP, SENDER_EMAIL and QUEUE_URL of a deployed one',
    );
  }
  let stack;
  try {
    stack = localStackSchema.parse(JSON.parse(raw));
  } catch {
    throw new ConfigError(`${LOCAL_STACK_FILE} is not a local stack description: run \`npm start\` again`);
  }
  // The SDK takes the endpoint and credentials from the environment, so the local stack goes there.
  Object.assign(io.env, functionEnvironment(stack));
  const config = loadConfig(io.env);
  return { config, source: `the local stack (${LOCAL_STACK_FILE}): table ${config.tableName} at ${stack.endpoint}`, local: true };
}

function realDeps(config: Config): { deps: ImportDeps; close(): void } {
  const clients = createAwsClients();
  return {
    deps: createEnqueueDeps(config, clients),
    // Idle keep-alive sockets would otherwise hold the process open after the summary.
    close: () => Object.values(clients).forEach((client) => client.destroy()),
  };
}

/**
 * A bar on a terminal; elsewhere (CI logs, a pipe) a plain line every tenth of the file, since a
 * redrawn bar would write a line per update there.
 */
function progressReporter(stderr: ImportCommandIo['stderr'], total: number) {
  if (total === 0) return { update: () => undefined, stop: () => undefined };
  if (stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: stderr,
        format:
          'importing [{bar}] {value}/{total} rows | queued {queued}, requeued {requeued}, ' +
          'skipped {skipped}, invalid {invalid}, failed {failed}',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { queued: 0, requeued: 0, skipped: 0, invalid: 0, failed: 0 });
    return { update: (p: ImportProgress) => bar.update(p.rows, { ...p.counts }), stop: () => bar.stop() };
  }
  let printed = 0;
  return {
    update: (p: ImportProgress) => {
      const tenths = Math.floor((p.rows * 10) / total);
      if (tenths <= printed) return;
      printed = tenths;
      const c = p.counts;
      stderr.write(
        `importing: ${Math.floor((p.rows / total) * 100)}% (${p.rows}/${total} rows): ${c.queued} queued, ` +
          `${c.requeued} requeued, ${c.skipped} skipped, ${c.invalid} invalid, ${c.failed} failed\n`,
      );
    },
    stop: () => undefined,
  };
}

const SKIP_REASONS: Record<ImportSummary['skipped'][number]['reason'], string> = {
  'already-provisioned': 'already provisioned',
  'customer-already-registered': 'customer already registered (another registration)',
  'customer-revoked': 'customer revoked (re-activate through POST /registrations)',
  'idempotency-key-reused': 'registered before with other details (idempotency key reused)',
  'failed-earlier': 'failed earlier',
};

export function formatSummary(file: string, summary: ImportSummary): string {
  const { counts } = summary;
  const lines = [
    `${file}: ${summary.rows} rows`,
    ...(['queued', 'requeued', 'skipped', 'invalid', 'failed'] as const).map(
      (outcome) => `  ${outcome.padEnd(9)}${String(counts[outcome]).padStart(7)}`,
    ),
  ];
  if (summary.invalid.length > 0) {
    lines.push('Invalid rows:');
    for (const row of summary.invalid) {
      lines.push(`  line ${row.line}: ${row.field ? `${row.field}: ` : ''}${row.message}`);
    }
  }
  if (summary.skipped.length > 0) {
    lines.push('Skipped rows:');
    for (const row of summary.skipped) {
      const detail = row.detail ? `: ${row.detail}` : '';
      lines.push(`  line ${row.line} (${row.customerId}): ${SKIP_REASONS[row.reason]}${detail}`);
    }
  }
  if (summary.failed.length > 0) {
    lines.push('Failed rows (importing the file again retries them):');
    for (const row of summary.failed) lines.push(`  line ${row.line} (${row.customerId}): ${row.reason}`);
  }
  return `${lines.join('\n')}\n`;
}
