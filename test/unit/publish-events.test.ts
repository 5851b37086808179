import { describe, expect, it, vi } from 'vitest';
import type { RecordedEvent } from '../../shared/core/events';
import {
  type EventBus,
  EventNotPublishedError,
  publishedDetail,
  publishEvents,
  type RefusedEvent,
  UnsafeEventError,
} from '../../shared/events/publish-events';
import { metrics } from '../../shared/metrics';
import { recordedEvent } from '../support/stream-events';

const KEY_VALUE = `kp_home_${'A1b2C3d4E5'.repeat(3)}xyz`;

/**
 * A bus of 10 events per call that takes everything, except what `refuse` says for a call (by its
 * number, from 1) or what `fail` throws for.
 */
function fakeBus({
  refuse = () => [],
  fail = () => false,
}: { refuse?: (call: number, events: readonly RecordedEvent[]) => string[]; fail?: (call: number) => boolean } = {}) {
  const calls: string[][] = [];
  const published: string[] = [];
  const bus: EventBus = {
    maxEventsPerCall: 10,
    publish: vi.fn(async (events: readonly RecordedEvent[]) => {
      calls.push(events.map((e) => e.eventId));
      if (fail(calls.length)) throw new Error('connection reset');
      const refusedIds = refuse(calls.length, events);
      published.push(...events.filter((e) => !refusedIds.includes(e.eventId)).map((e) => e.eventId));
      const refused: RefusedEvent[] = refusedIds.map((eventId) => ({ eventId, code: 'ThrottlingException', message: 'Rate exceeded' }));
      return { refused };
    }),
  };
  return { bus, calls, published };
}

const noWait = vi.fn(async () => undefined);
const eventsOf = (customerId: string, count: number, first = 1) =>
  Array.from({ length: count }, (_, i) => recordedEvent(customerId, first + i));
const ids = (events: readonly RecordedEvent[]) => events.map((e) => e.eventId);

describe('publishEvents', () => {
  it('publishes in calls of at most 10 events, in the order given', async () => {
    // Prepare
    const events = eventsOf('cust-a', 23);
    const { bus, calls, published } = fakeBus();

    // Act
    const outcome = await publishEvents(events, { bus, pause: noWait });

    // Assess
    expect(outcome).toEqual({ published: 23 });
    expect(calls.map((call) => call.length)).toEqual([10, 10, 3]);
    expect(published).toEqual(ids(events));
  });

  it('makes no call for no events', async () => {
    const { bus } = fakeBus();

    expect(await publishEvents([], { bus, pause: noWait })).toEqual({ published: 0 });
    expect(bus.publish).not.toHaveBeenCalled();
  });

  it('publishes again only the events the bus refused, after a doubling wait, until it takes them', async () => {
    // Prepare: the bus refuses two events of the first call, then one of them again.
    const events = eventsOf('cust-a', 5);
    const [, second, , fourth] = ids(events);
    const { bus, calls, published } = fakeBus({
      refuse: (call) => (call === 1 ? [second!, fourth!] : call === 2 ? [second!] : []),
    });
    const pause = vi.fn(async () => undefined);

    // Act
    const outcome = await publishEvents(events, { bus, pause, settings: { attempts: 3, backoffMs: 100 } });

    // Assess
    expect(outcome).toEqual({ published: 5 });
    expect(calls).toEqual([ids(events), [second, fourth], [second]]);
    expect(pause.mock.calls).toEqual([[100], [200]]);
    expect(published.sort()).toEqual(ids(events).sort());
  });

  it('stops at the first event still refused after the attempts: nothing after it is published, and it is the failure', async () => {
    // Prepare: 15 events; the bus always refuses the 4th of the first call.
    const events = eventsOf('cust-a', 15);
    const stubborn = events[3]!.eventId;
    const { bus, calls } = fakeBus({ refuse: (_, sent) => (sent.some((e) => e.eventId === stubborn) ? [stubborn] : []) });

    // Act
    const outcome = await publishEvents(events, { bus, pause: noWait, settings: { attempts: 3, backoffMs: 1 } });

    // Assess: the second call (events 11 to 15) never happened; the stream resumes at event 4.
    expect(outcome.published).toBe(3);
    expect(outcome.failure?.index).toBe(3);
    expect(outcome.failure?.error).toBeInstanceOf(EventNotPublishedError);
    expect(outcome.failure?.error.message).toContain(stubborn);
    expect(outcome.failure?.error.message).toContain('ThrottlingException');
    expect(calls).toEqual([ids(events.slice(0, 10)), [stubborn], [stubborn]]);
  });

  it('names the earliest of several events still refused', async () => {
    const events = eventsOf('cust-a', 6);
    const refusedIds = [events[4]!.eventId, events[1]!.eventId];
    const { bus } = fakeBus({ refuse: (_, sent) => refusedIds.filter((id) => sent.some((e) => e.eventId === id)) });

    const outcome = await publishEvents(events, { bus, pause: noWait, settings: { attempts: 2, backoffMs: 1 } });

    expect(outcome.failure?.index).toBe(1);
  });

  it('does not repeat a call that failed as a whole (the SDK retried it): the failure is its first event', async () => {
    // Prepare: the second call of 10 fails.
    const events = eventsOf('cust-a', 25);
    const { bus, calls } = fakeBus({ fail: (call) => call === 2 });

    // Act
    const outcome = await publishEvents(events, { bus, pause: noWait });

    // Assess
    expect(outcome).toMatchObject({ published: 10, failure: { index: 10 } });
    expect(outcome.failure?.error).toBeInstanceOf(EventNotPublishedError);
    expect((outcome.failure?.error.cause as Error).message).toBe('connection reset');
    expect(calls).toHaveLength(2);
  });

  it('keeps each customer in order across customers: an event of one never overtakes an earlier failed one of it', async () => {
    // Prepare: two customers interleaved in stream order; b's 2nd event is refused for good.
    const a = eventsOf('cust-a', 8);
    const b = eventsOf('cust-b', 8);
    const events = a.flatMap((event, i) => [event, b[i]!]);
    const stuck = b[1]!.eventId;
    const { bus, published } = fakeBus({ refuse: (_, sent) => (sent.some((e) => e.eventId === stuck) ? [stuck] : []) });

    // Act
    const outcome = await publishEvents(events, { bus, pause: noWait, settings: { attempts: 2, backoffMs: 1 } });

    // Assess: published only the events of the first call that came before it; from it on, everything goes again.
    expect(outcome.failure?.index).toBe(events.indexOf(b[1]!));
    const again = ids(events.slice(outcome.failure!.index));
    const ofB = (list: string[]) => list.filter((id) => id.startsWith('cust-b'));
    // Every event of b after the stuck one is delivered again after it, in order.
    expect(ofB(again)).toEqual(ids(b.slice(1)));
    expect(published).not.toContain(stuck);
  });

  it('never publishes an event whose detail holds a key value, nor any after it; the ones before are published', async () => {
    // Prepare
    const events = [
      recordedEvent('cust-a', 1),
      recordedEvent('cust-a', 2, 'KeyEmailed', { keyId: 'k1', note: `value ${KEY_VALUE}` }),
      recordedEvent('cust-a', 3),
    ];
    const { bus, published } = fakeBus();

    // Act
    const outcome = await publishEvents(events, { bus, pause: noWait });

    // Assess
    expect(published).toEqual([events[0]!.eventId]);
    expect(outcome).toMatchObject({ published: 1, failure: { index: 1 } });
    expect(outcome.failure?.error).toBeInstanceOf(UnsafeEventError);
    expect(outcome.failure?.error.message).not.toContain(KEY_VALUE);
  });

  it('counts the events the bus took and those it still refused', async () => {
    const count = vi.spyOn(metrics, 'count');
    const events = eventsOf('cust-a', 4);
    const stuck = events[2]!.eventId;
    const { bus } = fakeBus({ refuse: (_, sent) => (sent.some((e) => e.eventId === stuck) ? [stuck] : []) });

    await publishEvents(events, { bus, pause: noWait, settings: { attempts: 2, backoffMs: 1 } });

    expect(count.mock.calls).toEqual([
      ['EventsPublished', 3],
      ['EventPublishFailures', 1],
    ]);
  });
});

describe('publishedDetail', () => {
  it('is the envelope, then the event’s own detail, leaving out what is undefined', () => {
    const recorded = recordedEvent('cust-a', 7, 'TierChanged', { from: 'free', to: 'pro', shard: undefined, keys: ['k1', 'k2'] });

    expect(publishedDetail(recorded)).toEqual({
      eventId: 'cust-a-event-7',
      customerId: 'cust-a',
      sequence: 7,
      time: '2026-01-01T00:00:00.000Z',
      correlationId: 'attempt-of-cust-a',
      from: 'free',
      to: 'pro',
      keys: ['k1', 'k2'],
    });
    expect(Object.keys(publishedDetail(recorded)).slice(0, 5)).toEqual(['eventId', 'customerId', 'sequence', 'time', 'correlationId']);
  });

  it('lets no detail field replace an envelope field', () => {
    const recorded = recordedEvent('cust-a', 2, 'KeyRepaired', { customerId: 'someone-else', sequence: 99, eventId: 'forged' });

    expect(publishedDetail(recorded)).toMatchObject({ eventId: 'cust-a-event-2', customerId: 'cust-a', sequence: 2 });
  });
});
