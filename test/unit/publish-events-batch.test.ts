import { describe, expect, it, vi } from 'vitest';
import { publishEventsBatchHandler } from '../../functions/publish-events/batch';
import { outboxEventOf } from '../../shared/aws/outbox-stream';
import { eventKey, keyItemKey, profileKey } from '../../shared/aws/table-keys';
import type { RecordedEvent } from '../../shared/core/events';
import type { EventBus } from '../../shared/events/publish-events';
import { lambdaContext } from '../support/api-events';
import { outboxRecord, recordedEvent, streamEvent, streamRecord } from '../support/stream-events';

/** A bus that takes every event but those in `refuse`, for good. */
function bus(refuse: string[] = []) {
  const published: RecordedEvent[] = [];
  const fake: EventBus = {
    maxEventsPerCall: 10,
    publish: vi.fn(async (events: readonly RecordedEvent[]) => {
      published.push(...events.filter((e) => !refuse.includes(e.eventId)));
      return { refused: refuse.filter((id) => events.some((e) => e.eventId === id)).map((eventId) => ({ eventId, code: 'InternalFailure', message: '' })) };
    }),
  };
  return { fake, published };
}

const handlerOver = (fake: EventBus) =>
  publishEventsBatchHandler({ bus: fake, eventOf: outboxEventOf, pause: async () => undefined, settings: { attempts: 2, backoffMs: 1 } });

describe('the publish-events batch handler', () => {
  it('publishes the inserted outbox items of the batch, in stream order, each as the item holds it', async () => {
    // Prepare
    const events = [recordedEvent('cust-a', 1), recordedEvent('cust-b', 1), recordedEvent('cust-a', 2, 'KeyEmailed', { keyId: 'k', reason: 'registration' })];
    const { fake, published } = bus();

    // Act
    const response = await handlerOver(fake)(streamEvent(events.map((e) => outboxRecord(e))), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(published).toEqual(events);
  });

  it('ignores every record that is no outbox insert: other items, updates, removals (the TTL)', async () => {
    // Prepare
    const recorded = recordedEvent('cust-a', 3);
    const outboxItem = { ...eventKey('cust-a', 3), ...recorded };
    const records = [
      streamRecord({ ...profileKey('cust-a'), tier: 'free', version: 3 }),
      streamRecord({ ...keyItemKey('cust-a', 'k1'), state: 'ACTIVE' }, { eventName: 'MODIFY' }),
      streamRecord({ pk: 'REG#r1', sk: 'REG', state: 'ACTIVE' }),
      streamRecord(outboxItem, { eventName: 'MODIFY' }),
      streamRecord(outboxItem, { eventName: 'REMOVE' }),
    ];
    const { fake } = bus();

    // Act
    const response = await handlerOver(fake)(streamEvent(records), lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(fake.publish).not.toHaveBeenCalled();
  });

  it('reports the record of the event it could not publish and every record after it, by sequence number', async () => {
    // Prepare: a customer's events between other records; its 2nd event is refused for good.
    const events = [recordedEvent('cust-a', 1), recordedEvent('cust-a', 2), recordedEvent('cust-b', 1), recordedEvent('cust-a', 3)];
    const records = [
      outboxRecord(events[0]!, '101'),
      streamRecord({ ...profileKey('cust-a'), version: 1 }, { sequence: '102', eventName: 'MODIFY' }),
      outboxRecord(events[1]!, '103'),
      outboxRecord(events[2]!, '104'),
      streamRecord({ ...profileKey('cust-b'), version: 1 }, { sequence: '105', eventName: 'MODIFY' }),
      outboxRecord(events[3]!, '106'),
    ];
    const { fake } = bus([events[1]!.eventId]);

    // Act
    const response = await handlerOver(fake)(streamEvent(records), lambdaContext());

    // Assess: the stream resumes at 103; nothing after it counts as done.
    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(['103', '104', '105', '106']);
  });

  it('fails an inserted outbox item that is no event from its record on, publishing the events before it', async () => {
    // Prepare: an EVENT# item with no type, between two good ones.
    const before = recordedEvent('cust-a', 1);
    const after = recordedEvent('cust-a', 3);
    const broken = { ...eventKey('cust-a', 2), ...recordedEvent('cust-a', 2), type: undefined };
    const records = [outboxRecord(before, '201'), streamRecord(broken, { sequence: '202' }), outboxRecord(after, '203')];
    const { fake, published } = bus();

    // Act
    const response = await handlerOver(fake)(streamEvent(records), lambdaContext());

    // Assess
    expect(published).toEqual([before]);
    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(['202', '203']);
  });

  it('reports the whole batch when the bus cannot be called at all', async () => {
    const events = [recordedEvent('cust-a', 1), recordedEvent('cust-a', 2)];
    const fake: EventBus = { maxEventsPerCall: 10, publish: vi.fn().mockRejectedValue(new Error('AccessDeniedException')) };

    const response = await handlerOver(fake)(streamEvent(events.map((e, i) => outboxRecord(e, String(301 + i)))), lambdaContext());

    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(['301', '302']);
  });
});
