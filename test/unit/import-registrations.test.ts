import { singleShard } from '../../shared/core/shards';
import { describe, expect, it } from 'vitest';
import { TransientAwsError } from '../../shared/errors';
import {
  type ImportDeps,
  type ImportProgress,
  type ImportRow,
  importRegistrations,
} from '../../shared/provisioning/import-registrations';
import type { ClaimResult, RegistrationStore } from '../../shared/core/ports';
import type { ProvisioningMessage, RegistrationQueue } from '../../shared/provisioning/ports';
import { hashRegistrationRequest, type Registration } from '../../shared/core/registration';

const NOW = new Date('2025-03-01T12:00:00.000Z');

/** The registration table's claim semantics, in memory: the only part the import touches. */
class InMemoryStore implements RegistrationStore {
  readonly registrations = new Map<string, Registration>();
  /** customer id -> the registration that owns the customer profile */
  readonly owners = new Map<string, string>();
  /** claim() calls that fail with throttling before reaching the table, per registration id */
  readonly throttled = new Map<string, number>();
  claims = 0;

  async claim(registration: Registration): Promise<ClaimResult> {
    this.claims++;
    const throttles = this.throttled.get(registration.registrationId) ?? 0;
    if (throttles > 0) {
      this.throttled.set(registration.registrationId, throttles - 1);
      throw new TransientAwsError('DynamoDB is unavailable: ProvisionedThroughputExceededException', 2);
    }
    const existing = this.registrations.get(registration.registrationId);
    if (existing) return { kind: 'exists', registration: existing };
    const owner = this.owners.get(registration.customerId);
    if (owner && owner !== registration.registrationId) return { kind: 'customer-taken' };
    this.registrations.set(registration.registrationId, registration);
    return { kind: 'claimed', registration };
  }

  /** A registration made earlier (another run, the portal), in the given state. */
  seed(customerId: string, state: Registration['state'], overrides: Partial<Registration> = {}) {
    this.registrations.set(customerId, {
      registrationId: customerId,
      customerId,
      email: `${customerId}@example.com`,
      tier: 'free',
      payloadHash: '',
      usagePlanId: 'plan-free',
      state,
      attemptId: 'earlier',
      leaseExpiresAt: 0,
      createdAt: '2025-01-01T00:00:00.000Z',
      updatedAt: '2025-01-01T00:00:00.000Z',
      ...overrides,
    });
  }

  takeOver = unused;
  recordKey = unused;
  recordFailure = unused;
  failUnclaimed = unused;
  releaseLease = unused;
  getRegistration = unused;
  getCustomer = unused;
}

function unused(): never {
  throw new Error('the import must not call this');
}

class FakeQueue implements RegistrationQueue {
  readonly sent: ProvisioningMessage[] = [];
  /** send() calls that fail with a 5xx, per registration id */
  readonly failing = new Map<string, number>();
  inFlight = 0;
  maxInFlight = 0;

  async send(message: ProvisioningMessage): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    // Let the other workers run, so concurrency is observable.
    await new Promise((resolve) => setImmediate(resolve));
    this.inFlight--;
    const failures = this.failing.get(message.registrationId) ?? 0;
    if (failures > 0) {
      this.failing.set(message.registrationId, failures - 1);
      throw new TransientAwsError('SQS is unavailable: InternalError', 2);
    }
    this.sent.push(message);
  }
}

function setup() {
  const store = new InMemoryStore();
  const queue = new FakeQueue();
  const sleeps: number[] = [];
  const deps: ImportDeps = {
    store,
    queue,
    settings: { shards: singleShard({ free: 'plan-free', pro: 'plan-pro' }), keyNamePrefix: 'kp', stage: 'test', rotationDays: 90, leaseSeconds: 60, sweepSeconds: 300 },
    clock: () => NOW,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  };
  return { store, queue, sleeps, deps };
}

const customer = (n: number, overrides: Record<string, unknown> = {}) => ({
  customerId: `cust-${n}`,
  email: `c${n}@example.com`,
  tier: 'free',
  ...overrides,
});

/** The payload hash the claim records for customer(n). */
const hashOf = (n: number) => hashRegistrationRequest({ customerId: `cust-${n}`, email: `c${n}@example.com`, tier: 'free' });

async function* rowsOf(...rows: ImportRow[]): AsyncGenerator<ImportRow> {
  for (const row of rows) yield row;
}

/** Data rows as a CSV would number them: the header is line 1. */
const dataRows = (fields: unknown[]) => fields.map((value, index) => ({ line: index + 2, fields: value }));

describe('importRegistrations', () => {
  it('queues every valid row under its customer id, with the request as validated', async () => {
    // Prepare
    const { deps, queue, store } = setup();

    // Act
    const summary = await importRegistrations(
      rowsOf(...dataRows([customer(1), customer(2, { tier: 'pro', name: '  Ada  ' })])),
      deps,
    );

    // Assess
    expect(summary).toEqual({
      rows: 2,
      counts: { queued: 2, requeued: 0, skipped: 0, invalid: 0, failed: 0 },
      invalid: [],
      skipped: [],
      failed: [],
    });
    expect(queue.sent).toEqual(
      expect.arrayContaining([
        { registrationId: 'cust-1', request: customer(1) },
        { registrationId: 'cust-2', request: customer(2, { tier: 'pro', name: 'Ada' }) },
      ]),
    );
    expect(store.registrations.get('cust-2')).toMatchObject({ state: 'QUEUED', usagePlanId: 'plan-pro' });
  });

  it('reports invalid rows with line and field, sorted by line, and still queues the valid ones', async () => {
    // Prepare
    const { deps, queue } = setup();
    const rows: ImportRow[] = [
      { line: 2, fields: customer(1) },
      { line: 9, fields: customer(9, { email: 'not-an-address' }) },
      { line: 3, error: 'not valid JSON (Unexpected token)' },
      { line: 4, fields: customer(4, { tier: 'gold' }) },
      { line: 5, fields: customer(5) },
      { line: 6, fields: customer(6, { plan: 'free' }) },
      { line: 7, fields: [1, 2] },
      { line: 8, fields: { email: 'c8@example.com', tier: 'free' } },
    ];

    // Act
    const summary = await importRegistrations(rowsOf(...rows), deps, { concurrency: 3 });

    // Assess
    expect(summary.counts).toEqual({ queued: 2, requeued: 0, skipped: 0, invalid: 6, failed: 0 });
    expect(queue.sent.map((m) => m.registrationId).sort()).toEqual(['cust-1', 'cust-5']);
    expect(summary.invalid.map((row) => row.line)).toEqual([3, 4, 6, 7, 8, 9]);
    expect(summary.invalid[0]).toEqual({ line: 3, message: 'not valid JSON (Unexpected token)' });
    expect(summary.invalid[1]).toEqual({ line: 4, field: 'tier', message: 'tier must be one of: free, pro' });
    expect(summary.invalid[2]).toEqual({ line: 6, field: 'plan', message: 'unknown field "plan"' });
    expect(summary.invalid[3]).toEqual({ line: 7, field: 'body', message: 'the body must be a JSON object' });
    expect(summary.invalid[4]).toEqual({ line: 8, field: 'customerId', message: 'customerId is required' });
    expect(summary.invalid[5]).toEqual({ line: 9, field: 'email', message: 'email must be one plain email address' });
  });

  it('says what is wrong with a row in the words the HTTP API uses, naming the field', async () => {
    // Prepare: a CSV row leaves an empty cell out, so a missing field is an absent one.
    const { deps, queue } = setup();
    const { customerId: _, ...withoutCustomerId } = customer(2);
    const rows: ImportRow[] = [
      { line: 2, fields: withoutCustomerId },
      { line: 3, fields: customer(3, { customerId: 'cust 3' }) },
      { line: 4, fields: customer(4, { tier: undefined }) },
    ];

    // Act
    const summary = await importRegistrations(rowsOf(...rows), deps);

    // Assess
    expect(summary.invalid).toEqual([
      { line: 2, field: 'customerId', message: 'customerId is required' },
      { line: 3, field: 'customerId', message: 'customerId may contain only letters, digits and . _ : -' },
      { line: 4, field: 'tier', message: 'tier is required' },
    ]);
    expect(queue.sent).toEqual([]);
  });

  it('sorts every bucket by line, whatever order the rows finish in', async () => {
    // Prepare: many rows in flight, so completions interleave.
    const { deps, store } = setup();
    store.seed('cust-7', 'ACTIVE');
    store.seed('cust-3', 'ACTIVE');
    const fields = Array.from({ length: 12 }, (_, i) => customer(i + 1, i % 4 === 0 ? { email: 'x' } : {}));

    // Act
    const summary = await importRegistrations(rowsOf(...dataRows(fields).reverse()), deps, { concurrency: 5 });

    // Assess
    expect(summary.invalid.map((row) => row.line)).toEqual([2, 6, 10]);
    expect(summary.skipped.map((row) => row.line)).toEqual([4, 8]);
  });

  it('maps what the registration already was to requeued or skipped, with the reason', async () => {
    // Prepare
    const { deps, store, queue } = setup();
    store.seed('cust-1', 'QUEUED', { payloadHash: hashOf(1) }); // accepted, send may be lost
    store.seed('cust-2', 'EMAIL_PENDING', { payloadHash: hashOf(2) }); // unfinished
    store.seed('cust-3', 'ACTIVE', { payloadHash: hashOf(3) }); // done
    store.seed('cust-4', 'FAILED', { payloadHash: hashOf(4), failureReason: 'association-rejected' });
    store.seed('cust-5', 'QUEUED', { payloadHash: 'another payload' }); // same id, other details
    store.owners.set('cust-6', 'portal-registration-6'); // the customer has a key from elsewhere

    // Act
    const summary = await importRegistrations(
      rowsOf(...dataRows([1, 2, 3, 4, 5, 6, 7].map((n) => customer(n)))),
      deps,
    );

    // Assess
    expect(summary.counts).toEqual({ queued: 1, requeued: 2, skipped: 4, invalid: 0, failed: 0 });
    expect(summary.skipped).toEqual([
      { line: 4, customerId: 'cust-3', reason: 'already-provisioned' },
      { line: 5, customerId: 'cust-4', reason: 'failed-earlier', detail: 'association-rejected' },
      { line: 6, customerId: 'cust-5', reason: 'idempotency-key-reused' },
      { line: 7, customerId: 'cust-6', reason: 'customer-already-registered' },
    ]);
    expect(queue.sent.map((m) => m.registrationId).sort()).toEqual(['cust-1', 'cust-2', 'cust-7']);
  });

  it('creates nothing new when the same rows are imported again', async () => {
    // Prepare
    const { deps, store, queue } = setup();
    const fields = [1, 2, 3].map((n) => customer(n));
    await importRegistrations(rowsOf(...dataRows(fields)), deps);
    const before = structuredClone([...store.registrations]);

    // Act
    const again = await importRegistrations(rowsOf(...dataRows(fields)), deps);

    // Assess: still QUEUED (no worker ran), so each is sent again, harmlessly.
    expect(again.counts).toEqual({ queued: 0, requeued: 3, skipped: 0, invalid: 0, failed: 0 });
    expect([...store.registrations]).toEqual(before);
    expect(queue.sent).toHaveLength(6);
  });

  it('retries a row on throttling or a 5xx with growing backoff, then counts it once', async () => {
    // Prepare
    const { deps, store, queue, sleeps } = setup();
    store.throttled.set('cust-1', 2);

    // Act
    const summary = await importRegistrations(rowsOf(...dataRows([customer(1)])), deps, { backoffBaseMs: 100 });

    // Assess
    expect(summary.counts.queued).toBe(1);
    expect(store.claims).toBe(3);
    expect(queue.sent).toHaveLength(1);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(sleeps[0]).toBeLessThanOrEqual(100);
    expect(sleeps[1]).toBeGreaterThanOrEqual(100);
    expect(sleeps[1]).toBeLessThanOrEqual(200);
  });

  it('counts a row as queued when its own earlier attempt claimed it and only the send failed', async () => {
    // Prepare
    const { deps, queue } = setup();
    queue.failing.set('cust-1', 1);

    // Act
    const summary = await importRegistrations(rowsOf(...dataRows([customer(1)])), deps);

    // Assess: the retry finds the claim as "existing", but this run made it.
    expect(summary.counts).toEqual({ queued: 1, requeued: 0, skipped: 0, invalid: 0, failed: 0 });
    expect(queue.sent).toHaveLength(1);
  });

  it('marks a row failed when AWS keeps failing, and goes on with the others', async () => {
    // Prepare
    const { deps, store, sleeps } = setup();
    store.throttled.set('cust-2', 99);

    // Act
    const summary = await importRegistrations(rowsOf(...dataRows([1, 2, 3].map((n) => customer(n)))), deps, {
      attempts: 3,
    });

    // Assess
    expect(summary.counts).toEqual({ queued: 2, requeued: 0, skipped: 0, invalid: 0, failed: 1 });
    expect(summary.failed).toEqual([
      { line: 3, customerId: 'cust-2', reason: 'DynamoDB is unavailable: ProvisionedThroughputExceededException' },
    ]);
    expect(sleeps).toHaveLength(2);
    expect(summary.stopped).toBeUndefined();
  });

  it('stops when rows keep failing one after another, instead of spending every row its retries', async () => {
    // Prepare
    const { deps, store } = setup();
    for (let n = 1; n <= 50; n++) store.throttled.set(`cust-${n}`, 99);
    const fields = Array.from({ length: 50 }, (_, i) => customer(i + 1));

    // Act
    const summary = await importRegistrations(rowsOf(...dataRows(fields)), deps, {
      concurrency: 1,
      attempts: 2,
      maxConsecutiveFailures: 5,
    });

    // Assess
    expect(summary.rows).toBe(5);
    expect(summary.counts.failed).toBe(5);
    expect(summary.stopped).toEqual({ line: 6, reason: expect.stringContaining('5 rows in a row failed') });
  });

  it('stops at an error that is not about the row (no access, no table) and reports where', async () => {
    // Prepare
    const { deps, store } = setup();
    const denied = Object.assign(new Error('not authorized to perform dynamodb:TransactWriteItems'), {
      name: 'AccessDeniedException',
    });
    store.claim = async () => {
      throw denied;
    };
    const fields = Array.from({ length: 20 }, (_, i) => customer(i + 1));

    // Act
    const summary = await importRegistrations(rowsOf(...dataRows(fields)), deps, { concurrency: 1 });

    // Assess
    expect(summary.rows).toBe(1);
    expect(summary.stopped).toEqual({ line: 2, reason: expect.stringContaining('AccessDeniedException') });
    expect(summary.failed).toEqual([{ line: 2, customerId: 'cust-1', reason: expect.stringContaining('AccessDenied') }]);
  });

  it('keeps at most `concurrency` rows in flight and reports progress after every row', async () => {
    // Prepare
    const { deps, queue } = setup();
    const progress: ImportProgress[] = [];
    const fields = Array.from({ length: 30 }, (_, i) => customer(i + 1));

    // Act
    await importRegistrations(rowsOf(...dataRows(fields)), deps, {
      concurrency: 4,
      onProgress: (p) => progress.push(structuredClone(p)),
    });

    // Assess
    expect(queue.maxInFlight).toBe(4);
    expect(progress.map((p) => p.rows)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(progress.at(-1)?.counts.queued).toBe(30);
  });

  it('passes on an error of the reader (the file became unreadable)', async () => {
    // Prepare
    const { deps } = setup();
    async function* broken(): AsyncGenerator<ImportRow> {
      yield { line: 2, fields: customer(1) };
      throw new Error('EIO: i/o error, read');
    }

    // Act
    const act = importRegistrations(broken(), deps);

    // Assess
    await expect(act).rejects.toThrow('EIO');
  });
});
