import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeBus, PUT_EVENTS_LIMIT } from '../../shared/aws/eventbridge-bus';
import { recordedEvent } from '../support/stream-events';

const eventBridge = mockClient(EventBridgeClient);
const bus = () => new EventBridgeBus({ client: new EventBridgeClient({}), busName: 'default', source: 'keyplan.test' });

beforeEach(() => {
  eventBridge.reset();
});

describe('EventBridgeBus', () => {
  it('puts each event with the source, its type as detail-type, its commit time, and the envelope and detail as Detail', async () => {
    // Prepare
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });
    const recorded = recordedEvent('cust-a', 4, 'KeyRotated', { oldKeyId: 'k1', newKeyId: 'k2' });

    // Act
    const result = await bus().publish([recorded]);

    // Assess
    expect(result).toEqual({ refused: [] });
    const [entry, ...others] = eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries ?? [];
    expect(others).toEqual([]);
    expect(entry).toEqual({
      Source: 'keyplan.test',
      DetailType: 'KeyRotated',
      EventBusName: 'default',
      Time: new Date('2026-01-01T00:00:00.000Z'),
      Detail: expect.any(String) as unknown,
    });
    expect(JSON.parse(String(entry?.Detail))).toEqual({
      eventId: recorded.eventId,
      customerId: 'cust-a',
      sequence: 4,
      time: recorded.time,
      correlationId: recorded.correlationId,
      oldKeyId: 'k1',
      newKeyId: 'k2',
    });
  });

  it('answers the entries EventBridge refused, by their position in the request', async () => {
    // Prepare: 200 OK with FailedEntryCount, as EventBridge answers a partial failure.
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 2,
      Entries: [
        { EventId: 'e1' },
        { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' },
        { EventId: 'e3' },
        { ErrorCode: 'InternalFailure', ErrorMessage: 'try again' },
      ],
    });
    const events = [1, 2, 3, 4].map((sequence) => recordedEvent('cust-a', sequence));

    // Act
    const { refused } = await bus().publish(events);

    // Assess
    expect(refused).toEqual([
      { eventId: events[1]!.eventId, code: 'ThrottlingException', message: 'Rate exceeded' },
      { eventId: events[3]!.eventId, code: 'InternalFailure', message: 'try again' },
    ]);
  });

  it('takes an entry the answer does not account for as refused: it is published again', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ EventId: 'e1' }] });
    const events = [recordedEvent('cust-a', 1), recordedEvent('cust-a', 2)];

    const { refused } = await bus().publish(events);

    expect(refused).toEqual([{ eventId: events[1]!.eventId, code: 'Unanswered', message: '' }]);
  });

  it(`refuses more than ${PUT_EVENTS_LIMIT} events, PutEvents' limit, and makes no call for none`, async () => {
    const tooMany = Array.from({ length: PUT_EVENTS_LIMIT + 1 }, (_, i) => recordedEvent('cust-a', i + 1));

    await expect(bus().publish(tooMany)).rejects.toThrow(RangeError);
    await expect(bus().publish([])).resolves.toEqual({ refused: [] });
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(0);
  });

  it('lets a failed call fail', async () => {
    eventBridge.on(PutEventsCommand).rejects(new Error('AccessDeniedException'));

    await expect(bus().publish([recordedEvent('cust-a', 1)])).rejects.toThrow('AccessDeniedException');
  });
});
