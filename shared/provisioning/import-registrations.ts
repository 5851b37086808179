import { tiersOf } from '../core/shards';
import { setTimeout as delay } from 'node:timers/promises';
import { isPermanent, KeyplanError, ProvisioningFailedError, ValidationError } from '../errors';
import { validate } from '../validation';
import { type EnqueueDeps, enqueueRegistration } from './enqueue-registration';
import type { RegistrationRequest } from '../core/registration';
import { registrationRequestSchema } from './request-schema';

/** One data row of an import file: its fields, or why they could not be read. */
export type ImportRow = { line: number; fields: unknown } | { line: number; error: string };

export type ImportOutcome = 'queued' | 'requeued' | 'skipped' | 'invalid' | 'failed';

export type SkipReason =
  | 'already-provisioned'
  | 'customer-already-registered'
  | 'customer-revoked'
  | 'idempotency-key-reused'
  | 'failed-earlier';

export interface InvalidRow {
  line: number;
  /** The offending field, when the row could be read at all. */
  field?: string;
  message: string;
}

export interface SkippedRow {
  line: number;
  customerId: string;
  reason: SkipReason;
  /** For `failed-earlier`: the failure reason recorded on the registration. */
  detail?: string;
}

export interface FailedRow {
  line: number;
  customerId: string;
  reason: string;
}

export interface ImportSummary {
  /** Rows handled; fewer than in the file when the import stopped. */
  rows: number;
  counts: Record<ImportOutcome, number>;
  /** Each list is sorted by line. */
  invalid: InvalidRow[];
  skipped: SkippedRow[];
  failed: FailedRow[];
  /** Set when the import stopped early; the rows after `line` were not read. */
  stopped?: { line: number; reason: string };
}

export interface ImportProgress {
  rows: number;
  counts: Readonly<Record<ImportOutcome, number>>;
}

export interface ImportDeps extends EnqueueDeps {
  sleep?: (ms: number) => Promise<void>;
}

export interface ImportOptions {
  /** Rows in flight at once; each costs a DynamoDB transaction and an SQS send. Default 8. */
  concurrency?: number;
  /** Attempts per row while AWS answers with throttling or 5xx (after the SDK's own retries). Default 4. */
  attempts?: number;
  backoffBaseMs?: number;
  /**
   * Stop after this many rows in a row failed: AWS is unreachable or down, and going on would only
   * spend every row's retries. Default 10.
   */
  maxConsecutiveFailures?: number;
  onProgress?: (progress: ImportProgress) => void;
}

const BACKOFF_CAP_MS = 8_000;

/**
 * Queues registrations from an operator's file for the provisioning worker, each under its
 * customer id as idempotency key (like `POST /registrations` without an `Idempotency-Key`), so
 * importing the same file again creates nothing new.
 *
 * 1. Validate each row as the HTTP API validates a body; an invalid row is reported with its line
 *    and never stops the others.
 * 2. Enqueue it (record QUEUED, then send), `concurrency` rows at a time. `queued`: new;
 *    `requeued`: known and unfinished, sent again (the saga makes the repeat harmless); finished
 *    before, refused (customer or idempotency conflict) or failed before: `skipped`.
 * 3. Retry a row on throttling or 5xx with backoff; when attempts run out it is `failed`.
 *
 * An error nobody expects (access denied, missing table, no credentials) is not a row's problem:
 * the import stops, reports where, and a re-run resumes safely.
 *
 * @throws whatever reading `rows` throws (a file that cannot be read)
 */
export async function importRegistrations(
  rows: AsyncIterable<ImportRow>,
  deps: ImportDeps,
  options: ImportOptions = {},
): Promise<ImportSummary> {
  const {
    concurrency = 8,
    attempts = 4,
    backoffBaseMs = 250,
    maxConsecutiveFailures = 10,
    onProgress,
  } = options;
  const clock = deps.clock;
  const sleep = deps.sleep ?? ((ms: number) => delay(ms));
  const schema = registrationRequestSchema(tiersOf(deps.settings.shards));

  const counts: Record<ImportOutcome, number> = { queued: 0, requeued: 0, skipped: 0, invalid: 0, failed: 0 };
  const invalid: InvalidRow[] = [];
  const skipped: SkippedRow[] = [];
  const failed: FailedRow[] = [];
  let handled = 0;
  let consecutiveFailures = 0;
  let stopped: ImportSummary['stopped'];

  const count = (outcome: ImportOutcome) => {
    counts[outcome]++;
    handled++;
    consecutiveFailures = outcome === 'failed' ? consecutiveFailures + 1 : 0;
    onProgress?.({ rows: handled, counts });
  };

  async function enqueueWithRetry(line: number, request: RegistrationRequest): Promise<void> {
    // One `now` for every attempt of the row: a retry that finds the registration an earlier
    // attempt of this run claimed (then failed to send) recognizes it by this creation time.
    const now = clock();
    let retried = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const { outcome, registration } = await enqueueRegistration(
          { registrationId: request.customerId, request, now },
          deps,
        );
        if (outcome === 'replayed') {
          skipped.push({ line, customerId: request.customerId, reason: 'already-provisioned' });
          return count('skipped');
        }
        const ours = retried && outcome === 'requeued' && registration.createdAt === now.toISOString();
        return count(ours ? 'queued' : outcome);
      } catch (error) {
        // Throttling, or another operation holding the customer for a moment: worth another try.
        if (error instanceof KeyplanError && error.retryable && attempt < attempts) {
          retried = true;
          await sleep(Math.min(BACKOFF_CAP_MS, backoffBaseMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
          continue;
        }
        return settleFailure(line, request, error);
      }
    }
  }

  function settleFailure(line: number, request: RegistrationRequest, error: unknown): void {
    const customerId = request.customerId;
    if (error instanceof ValidationError) {
      // The tier map is the only thing the schema does not already check the same way.
      invalid.push(invalidRow(line, error));
      return count('invalid');
    }
    if (error instanceof ProvisioningFailedError) {
      skipped.push({ line, customerId, reason: 'failed-earlier', detail: error.reason });
      return count('skipped');
    }
    if (isPermanent(error)) {
      // A conflict with what the table holds (registered, revoked, the id reused): nothing to queue.
      skipped.push({ line, customerId, reason: (error as KeyplanError).code as SkipReason });
      return count('skipped');
    }
    if (error instanceof KeyplanError && error.retryable) {
      const reason = transientReason(error);
      failed.push({ line, customerId, reason });
      count('failed');
      if (consecutiveFailures >= maxConsecutiveFailures && !stopped) {
        stopped = { line, reason: `${consecutiveFailures} rows in a row failed; the last: ${reason}` };
      }
      return;
    }
    failed.push({ line, customerId, reason: describe(error) });
    count('failed');
    stopped ??= { line, reason: describe(error) };
  }

  async function handle(row: ImportRow): Promise<void> {
    if ('error' in row) {
      invalid.push({ line: row.line, message: row.error });
      return count('invalid');
    }
    let request: RegistrationRequest;
    try {
      request = validate(schema, row.fields);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      invalid.push(invalidRow(row.line, error));
      return count('invalid');
    }
    await enqueueWithRetry(row.line, request);
  }

  const iterator = rows[Symbol.asyncIterator]();
  // Async generators queue concurrent next() calls, so the workers share one reader safely.
  const worker = async () => {
    while (!stopped) {
      const next = await iterator.next();
      if (next.done) return;
      await handle(next.value);
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, concurrency) }, worker));
  // Stopping early leaves the reader open; closing it releases the file.
  if (stopped) await iterator.return?.();
  const rejected = results.find((result) => result.status === 'rejected');
  if (rejected) throw rejected.reason;

  const byLine = (a: { line: number }, b: { line: number }) => a.line - b.line;
  return {
    rows: handled,
    counts,
    invalid: invalid.sort(byLine),
    skipped: skipped.sort(byLine),
    failed: failed.sort(byLine),
    ...(stopped ? { stopped } : {}),
  };
}

function invalidRow(line: number, error: ValidationError): InvalidRow {
  // The message is a sentence that names the field already ("customerId is required").
  return { line, field: error.field, message: error.message };
}

/** A dropped connection has no AWS error name; its code (ECONNREFUSED) is what the operator needs. */
function transientReason(error: KeyplanError): string {
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
