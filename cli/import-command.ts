import cliProgress from 'cli-progress';
import {
  type ImportProgress,
  type ImportSummary,
  importRegistrations,
} from '../shared/provisioning/import-registrations';
import { type Command, type CommandContext, integerOption, positionals } from './command';
import { EXIT } from './failures';
import { detectFormat, readImportFile } from './import-file';

/** `keyplan import FILE` (also `npm run import -- FILE`): the operator's bulk import. */
export const importCommand: Command = {
  name: 'import',
  summary: 'queue a registration for every row of a CSV or JSON lines file',
  options: { concurrency: { type: 'string' } },
  help: (invocation) => `Usage: ${invocation} FILE [--json] [--concurrency N]

Queues a registration for every row of FILE; the provisioning worker then creates and emails
the keys. Each row's customer id is its idempotency key, so importing a file again creates
nothing new.

FILE  CSV with a header row customerId,email,tier[,name], or JSON lines (one
      {"customerId", "email", "tier", "name"?} object per line). .csv is CSV, .jsonl and
      .ndjson are JSON lines; otherwise a file whose first character is "{" is JSON lines.

  --concurrency N   rows in flight at once, 1-32 (default 8)

Progress goes to stderr. Exit codes: 0 every row queued, requeued or skipped; 1 some row invalid
or failed; 2 usage or configuration error, or the import stopped early (AWS unreachable or
refusing access). Running it again is safe in every case.
`,
  parse(args) {
    const [file = ''] = positionals(args, ['FILE']);
    const concurrency = integerOption(args, 'concurrency', 1, 32) ?? 8;
    return (context) => runImport(file, concurrency, context);
  },
};

async function runImport(file: string, concurrency: number, { services, stderr, local }: CommandContext) {
  const format = await detectFormat(file);
  // A first pass counts the rows for the progress bar and finds a bad header before anything is
  // written; it streams, like the import itself.
  let total = 0;
  for await (const _row of readImportFile(file, format)) total++;

  const deps = services.enqueue();
  const progress = progressReporter(stderr, total);
  let summary: ImportSummary;
  try {
    summary = await importRegistrations(readImportFile(file, format), deps, { concurrency, onProgress: progress.update });
  } finally {
    progress.stop();
  }

  const notes: string[] = [];
  let exitCode: number = summary.counts.invalid + summary.counts.failed > 0 ? EXIT.failed : EXIT.ok;
  if (summary.stopped) {
    const hint = local ? ' Is `npm start` running?' : '';
    notes.push(
      `stopped at line ${summary.stopped.line} after ${summary.rows} of ${total} rows: ${summary.stopped.reason}.${hint} ` +
        'Running the import again is safe.',
    );
    exitCode = EXIT.usage;
  }
  return { json: { file, format, ...summary }, text: formatSummary(file, summary), exitCode, notes };
}

/**
 * A bar on a terminal; elsewhere (CI logs, a pipe) a plain line every tenth of the file, since a
 * redrawn bar would write a line per update there.
 */
function progressReporter(stderr: CommandContext['stderr'], total: number) {
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
  'customer-revoked': 'customer revoked (re-activate with keyplan provision --reactivate)',
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
      // The message names its field ("customerId is required").
      lines.push(`  line ${row.line}: ${row.message}`);
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
