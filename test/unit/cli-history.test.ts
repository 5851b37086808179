import { describe, expect, it, vi } from 'vitest';
import { summarize } from '../../cli/commands/history';
import { type CliIo, runKeyplan } from '../../cli/run-keyplan';
import type { Services } from '../../cli/services';
import type { HistoryDeps } from '../../shared/audit/customer-history';
import type { EventHistory } from '../../shared/audit/ports';
import type { RecordedEvent } from '../../shared/core/events';
import { KEY_VALUE, PLAN_FREE, PLAN_PRO } from '../support/provisioning-fakes';

const DEPLOYED_ENV = {
  TABLE_NAME: 'keyplan-prod',
  TIER_MAP: JSON.stringify({ free: PLAN_FREE, pro: PLAN_PRO }),
  SENDER_EMAIL: 'keys@example.com',
  AWS_REGION: 'eu-west-1',
};

/** `keyplan ARGV` with the given fake dependencies; what it printed, where, and its exit code. */
async function keyplan(argv: string[], fakes: Partial<Services> = {}) {
  let stdout = '';
  let stderr = '';
  const close = vi.fn();
  const io: CliIo = {
    argv,
    env: { ...DEPLOYED_ENV },
    cwd: '/',
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += String(text)), isTTY: false } as unknown as CliIo['stderr'],
    services: () => ({ ...fakes, close }) as Services,
    now: () => new Date('2026-04-01T10:00:00.000Z'),
  };
  const code = await runKeyplan(io);
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> };
}

/** Event `sequence` of cust-1: rotations and tier changes by turns, as the outbox records them. */
const anEvent = (sequence: number): RecordedEvent => ({
  sequence,
  type: sequence % 2 ? 'TierChanged' : 'KeyRotated',
  time: new Date(Date.UTC(2026, 2, 1, 0, 0, sequence)).toISOString(),
  eventId: `event-${sequence}`,
  customerId: 'cust-1',
  correlationId: `op-${sequence}`,
  detail:
    sequence % 2
      ? { from: 'free', to: 'pro', cause: `req-${sequence}`, keyIds: ['key-1'] }
      : { oldKeyId: 'key-1', newKeyId: 'key-2', graceDays: 7, fingerprint: 'ab12cd34' },
});

/** The history port over `count` events of cust-1; every page it was asked for is kept. */
function history(count: number) {
  const reads: { limit: number; before?: number | undefined }[] = [];
  const events = Array.from({ length: count }, (_, i) => anEvent(count - i));
  const port: EventHistory = {
    page: async (customerId, request) => {
      reads.push(request);
      const older = events.filter((e) => customerId === 'cust-1' && (request.before === undefined || e.sequence < request.before));
      const shown = older.slice(0, request.limit);
      return older.length > request.limit ? { events: shown, next: shown.at(-1)?.sequence } : { events: shown };
    },
    knows: async (customerId) => customerId === 'cust-1',
  };
  const deps: HistoryDeps = { history: port };
  return { fakes: { history: () => deps }, reads };
}

describe('keyplan history', () => {
  it('prints every event, newest first, as a table of sequence, time, type and detail, reading page by page', async () => {
    // Prepare
    const { fakes, reads } = history(250);

    // Act
    const result = await keyplan(['history', 'cust-1'], fakes);

    // Assess
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('customer cust-1: 250 events, newest first');
    expect(lines[1]).toMatch(/^ {2}SEQ +TIME +TYPE +DETAIL$/);
    expect(lines[2]).toMatch(/^ {2}250 +2026-03-01 00:04:10Z +KeyRotated +oldKeyId=key-1 newKeyId=key-2 fingerprint=ab12cd34 graceDays=7$/);
    expect(lines[3]).toMatch(/^ {2}249 +2026-03-01 00:04:09Z +TierChanged +from=free to=pro cause=req-249 keyIds=key-1$/);
    expect(lines).toHaveLength(2 + 250);
    expect(lines.slice(2).map((line) => Number(line.trim().split(/ +/)[0]))).toEqual(
      Array.from({ length: 250 }, (_, i) => 250 - i),
    );
    expect(reads).toEqual([
      { limit: 100, before: undefined },
      { limit: 100, before: 151 },
      { limit: 100, before: 51 },
    ]);
    expect(result.stderr).toBe('keyplan history: using the environment: table keyplan-prod in eu-west-1\n');
  });

  it('with --limit prints the newest N, reads no more than that, and says older ones were left out', async () => {
    // Prepare
    const { fakes, reads } = history(250);

    // Act
    const result = await keyplan(['history', 'cust-1', '--limit', '7'], fakes);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(2 + 7);
    expect(reads).toEqual([{ limit: 7, before: undefined }]);
    expect(result.stderr).toContain('keyplan history: older events not shown: --limit 7 reached\n');
  });

  it('with a --limit past one page reads pages of 100 and then the rest', async () => {
    // Prepare
    const { fakes, reads } = history(250);

    // Act
    const result = await keyplan(['history', 'cust-1', '--limit', '150', '--json'], fakes);

    // Assess
    expect((result.json().events as unknown[]).length).toBe(150);
    expect(reads).toEqual([
      { limit: 100, before: undefined },
      { limit: 50, before: 151 },
    ]);
  });

  it('with --json prints {customerId, events}, each event whole', async () => {
    // Prepare
    const { fakes } = history(3);

    // Act
    const result = await keyplan(['history', 'cust-1', '--json'], fakes);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.json()).toEqual({ customerId: 'cust-1', events: [anEvent(3), anEvent(2), anEvent(1)] });
  });

  it('says so for a customer without events', async () => {
    // Prepare
    const { fakes } = history(0);

    // Act
    const result = await keyplan(['history', 'cust-1'], fakes);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('customer cust-1: no events\n');
  });

  it('exits 3 for an unknown customer', async () => {
    // Prepare
    const { fakes } = history(3);

    // Act
    const result = await keyplan(['history', 'ghost'], fakes);

    // Assess
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('keyplan history: no customer ghost\n');
  });

  it.each([
    [['history'], /^keyplan history: no CUSTOMER_ID given/],
    [['history', 'cust-1', 'cust-2'], /^keyplan history: unexpected argument "cust-2"/],
    [['history', 'cust-1', '--limit', '0'], /^keyplan history: --limit must be a whole number from 1 to 1000000, got "0"/],
    [['history', 'cust-1', '--limit', 'all'], /^keyplan history: --limit must be a whole number/],
    [['history', '.cust'], /^keyplan history: customerId must start with a letter or digit/],
  ])('exits 2 for %j, before reading anything', async (argv, message) => {
    // Prepare
    const { fakes, reads } = history(3);

    // Act
    const result = await keyplan(argv, fakes);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toMatch(message);
    expect(reads).toEqual([]);
  });

  it('never prints a key value', async () => {
    // Prepare: a detail that (wrongly) held one would show; the events hold fingerprints only
    const { fakes } = history(4);

    // Act
    const text = await keyplan(['history', 'cust-1'], fakes);
    const json = await keyplan(['history', 'cust-1', '--json'], fakes);

    // Assess
    expect(text.stdout + text.stderr + json.stdout + json.stderr).not.toContain(KEY_VALUE);
  });
});

describe('summarize', () => {
  it('puts the key id and the tiers first, leaves out what is empty, and joins lists', () => {
    expect(summarize({ shard: 'home', reason: 'retired', keyId: 'k-1', none: undefined, keyIds: [] })).toBe(
      'keyId=k-1 reason=retired shard=home',
    );
    expect(summarize({ keyIds: ['a', 'b'] })).toBe('keyIds=a,b');
    expect(summarize({})).toBe('-');
  });

  it('cuts a long detail to 80 characters', () => {
    const line = summarize({ keyIds: Array.from({ length: 30 }, (_, i) => `key-${i}`) });
    expect(line).toHaveLength(80);
    expect(line.endsWith('...')).toBe(true);
  });
});
