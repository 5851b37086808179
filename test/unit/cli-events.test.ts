import { describe, expect, it, vi } from 'vitest';
import { eventLine } from '../../cli/commands/events';
import { type CliIo, runKeyplan } from '../../cli/run-keyplan';
import type { Services } from '../../cli/services';
import type { EventFeed, FollowOptions } from '../../shared/audit/event-feed';
import { ConfigError } from '../../shared/config';
import type { RecordedEvent } from '../../shared/core/events';
import { KEY_VALUE, PLAN_FREE, PLAN_PRO } from '../support/provisioning-fakes';

const DEPLOYED_ENV = {
  TABLE_NAME: 'keyplan-prod',
  TIER_MAP: JSON.stringify({ free: PLAN_FREE, pro: PLAN_PRO }),
  SENDER_EMAIL: 'keys@example.com',
  AWS_REGION: 'eu-west-1',
};

/**
 * `keyplan ARGV` with the given event feed, Ctrl-C pressed once `interruptAfter` lines are out:
 * what it printed, where, its exit code, and whether it stopped listening for Ctrl-C.
 */
async function keyplan(argv: string[], feed?: EventFeed, interruptAfter = Infinity) {
  let stdout = '';
  let stderr = '';
  let stop: (() => void) | undefined;
  const stopListening = vi.fn();
  const eventFeed = vi.fn(() => feed!);
  const io: CliIo = {
    argv,
    env: { ...DEPLOYED_ENV },
    cwd: '/',
    stdout: {
      write: (text: string) => {
        stdout += text;
        if (stdout.split('\n').length - 1 >= interruptAfter) stop?.();
      },
    },
    stderr: { write: (text: string) => (stderr += String(text)), isTTY: false } as unknown as CliIo['stderr'],
    services: () => ({ eventFeed, close: vi.fn() }) as Partial<Services> as Services,
    onInterrupt: (onStop) => {
      stop = onStop;
      return stopListening;
    },
  };
  const code = await runKeyplan(io);
  return { code, stdout, stderr, eventFeed, stopListening, listened: stop !== undefined };
}

/** Events of two customers as their changes commit: a registration, then a tier change. */
const EVENTS: RecordedEvent[] = [
  anEvent('cust-1', 1, 'KeyProvisioned', { keyId: 'key-1', tier: 'free', usagePlanId: PLAN_FREE, fingerprint: 'ab12cd34' }),
  anEvent('cust-1', 2, 'KeyEmailed', { keyId: 'key-1', fingerprint: 'ab12cd34' }),
  anEvent('cust-2', 7, 'TierChanged', { from: 'free', to: 'pro', keyIds: ['key-8', 'key-9'] }),
];

function anEvent(customerId: string, sequence: number, type: RecordedEvent['type'], detail: RecordedEvent['detail']): RecordedEvent {
  return {
    eventId: `${customerId}-${sequence}`,
    customerId,
    sequence,
    type,
    time: `2026-04-01T10:00:0${sequence}.123Z`,
    correlationId: `op-${customerId}`,
    detail,
  };
}

/** A feed that brings `events` once started, then nothing until it is stopped; what it was asked. */
function feedOf(events: readonly RecordedEvent[], options: { malformed?: string } = {}) {
  const asked: FollowOptions[] = [];
  const feed: EventFeed = {
    async *follow(follow) {
      asked.push(follow);
      follow.onStart?.();
      if (options.malformed) follow.onMalformed?.(options.malformed);
      for (const event of events) yield event;
      await new Promise((resolve) => (follow.signal.aborted ? resolve(undefined) : follow.signal.addEventListener('abort', resolve)));
    },
  };
  return { feed, asked };
}

describe('keyplan events --follow', () => {
  it('prints each event as it comes, one line each, until Ctrl-C, and then exits 0', async () => {
    // Prepare
    const { feed, asked } = feedOf(EVENTS);

    // Act
    const result = await keyplan(['events', '--follow'], feed, EVENTS.length);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trimEnd().split('\n')).toEqual([
      '2026-04-01 10:00:01Z     1  cust-1  KeyProvisioned       keyId=key-1 tier=free fingerprint=ab12cd34 usagePlanId=plan-free',
      '2026-04-01 10:00:02Z     2  cust-1  KeyEmailed           keyId=key-1 fingerprint=ab12cd34',
      '2026-04-01 10:00:07Z     7  cust-2  TierChanged          from=free to=pro keyIds=key-8,key-9',
    ]);
    expect(result.stderr).toBe(
      'keyplan events: using the environment: table keyplan-prod in eu-west-1\n' +
        'keyplan events: following every event committed from now on; Ctrl-C stops\n' +
        'keyplan events: stopped after 3 events\n',
    );
    expect(asked[0]?.signal.aborted).toBe(true);
    expect(result.stopListening).toHaveBeenCalledOnce();
  });

  it('with --json prints each event as one JSON object per line, the event whole', async () => {
    // Prepare
    const { feed } = feedOf(EVENTS);

    // Act
    const result = await keyplan(['events', '--follow', '--json'], feed, EVENTS.length);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual(EVENTS);
  });

  it('takes -f for --follow, and stops cleanly when Ctrl-C comes before any event', async () => {
    // Prepare
    const { feed } = feedOf([]);
    let stop: (() => void) | undefined;
    const io: CliIo = {
      argv: ['events', '-f'],
      env: { ...DEPLOYED_ENV },
      cwd: '/',
      stdout: { write: () => undefined },
      stderr: {
        write: (text: string) => {
          // Ctrl-C as soon as it says it follows.
          if (String(text).includes('Ctrl-C stops')) stop?.();
        },
      } as unknown as CliIo['stderr'],
      services: () => ({ eventFeed: () => feed, close: vi.fn() }) as Partial<Services> as Services,
      onInterrupt: (onStop) => {
        stop = onStop;
        return () => undefined;
      },
    };

    // Act
    const code = await runKeyplan(io);

    // Assess
    expect(code).toBe(0);
  });

  it('says on stderr which outbox item it skipped, and goes on', async () => {
    // Prepare
    const { feed } = feedOf(EVENTS.slice(0, 1), { malformed: 'outbox item CUSTOMER#cust-3 EVENT#000000000001 is not an event: type is required' });

    // Act
    const result = await keyplan(['events', '--follow'], feed, 1);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('keyplan events: skipped outbox item CUSTOMER#cust-3 EVENT#000000000001 is not an event: type is required\n');
  });

  it('exits 2 with the message of a table that has no stream, and stops listening for Ctrl-C', async () => {
    // Prepare
    const feed: EventFeed = {
      // eslint-disable-next-line require-yield
      async *follow() {
        throw new ConfigError('table keyplan-prod has no stream: enable it');
      },
    };

    // Act
    const result = await keyplan(['events', '--follow', '--json'], feed);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('keyplan events: table keyplan-prod has no stream: enable it\n');
    expect(JSON.parse(result.stdout)).toEqual({
      error: { exitCode: 2, code: 'configuration', message: 'table keyplan-prod has no stream: enable it' },
    });
    expect(result.stopListening).toHaveBeenCalledOnce();
  });

  it.each([
    [
      ['events'],
      /^keyplan events: --follow is required: `keyplan events --follow` prints every event as it is committed; for one customer's trail, `keyplan history CUSTOMER_ID`$/,
    ],
    [['events', 'cust-1', '--follow'], /^keyplan events: unexpected argument "cust-1"$/],
    [['events', '--follow', '--limit', '3'], /^keyplan events: Unknown option '--limit'/],
  ])('exits 2 for %j, before reading anything or listening for Ctrl-C', async (argv, message) => {
    // Prepare
    const { feed } = feedOf(EVENTS);

    // Act
    const result = await keyplan(argv, feed);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toMatch(message);
    expect(result.stderr).toContain('Run `keyplan events --help` for usage.');
    expect(result.stdout).toBe('');
    expect(result.eventFeed).not.toHaveBeenCalled();
    expect(result.listened).toBe(false);
  });

  it('never prints a key value', async () => {
    // Prepare
    const { feed } = feedOf(EVENTS);

    // Act
    const text = await keyplan(['events', '--follow'], feed, EVENTS.length);
    const json = await keyplan(['events', '--follow', '--json'], feed, EVENTS.length);

    // Assess
    expect(text.stdout + text.stderr + json.stdout + json.stderr).not.toContain(KEY_VALUE);
  });
});

describe('eventLine', () => {
  it('lines the types up so that the detail starts in one column', () => {
    const short = eventLine(anEvent('cust-1', 3, 'KeyDeleted', { keyId: 'key-1' }));
    const long = eventLine(anEvent('cust-1', 4, 'CustomerReactivated', { tier: 'pro' }));

    expect(short.indexOf('keyId=')).toBe(long.indexOf('tier='));
  });

  it('shows a detail without fields as -', () => {
    expect(eventLine(anEvent('cust-1', 5, 'CustomerRevoked', {}))).toMatch(/CustomerRevoked +-$/);
  });
});
