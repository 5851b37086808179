import { describe, expect, it } from 'vitest';
import { outboxEventOf } from '../../shared/aws/outbox-stream';
import { eventKey, profileKey } from '../../shared/aws/table-keys';
import { ValidationError } from '../../shared/errors';
import { outboxRecord, recordedEvent, streamRecord } from '../support/stream-events';

describe('outboxEventOf', () => {
  it('reads an inserted outbox item as the event it records, without the item keys or its TTL', () => {
    const recorded = recordedEvent('cust-a', 12, 'TierChanged', { from: 'free', to: 'pro', keys: ['k1', 'k2'], moved: 2, forced: false });

    expect(outboxEventOf(outboxRecord(recorded))).toEqual(recorded);
  });

  it('reads a string set in the detail as a list', () => {
    const recorded = recordedEvent('cust-a', 1);
    const record = streamRecord({ ...eventKey('cust-a', 1), ...recorded, detail: { keys: new Set(['k2', 'k1']) } });

    expect(outboxEventOf(record)?.detail.keys).toEqual(expect.arrayContaining(['k1', 'k2']));
  });

  it.each([
    ['a profile', streamRecord({ ...profileKey('cust-a'), tier: 'free' })],
    ['an update of an outbox item', streamRecord({ ...eventKey('cust-a', 1), ...recordedEvent('cust-a', 1) }, { eventName: 'MODIFY' })],
    ['the removal of an outbox item (its TTL)', streamRecord({ ...eventKey('cust-a', 1) }, { eventName: 'REMOVE' })],
  ])('brings no event for %s', (_, record) => {
    expect(outboxEventOf(record)).toBeUndefined();
  });

  it.each([
    ['no type', { type: undefined }, /type is required/],
    ['an unknown type', { type: 'KeyStolen' }, /type must be one of/],
    ['a detail that is not a map', { detail: 'free' }, /detail must be a map/],
    ['a detail value that is a map', { detail: { key: { value: 'x' } } }, /detail\.key must be a string/],
    ['a sequence that does not match its sort key', { sequence: 3 }, /filed under its customer's partition/],
    ['no time', { time: undefined }, /time is required/],
  ])('refuses an inserted outbox item with %s', (_, change, message) => {
    const item = { ...eventKey('cust-a', 2), ...recordedEvent('cust-a', 2), ...change };

    expect(() => outboxEventOf(streamRecord(item))).toThrow(ValidationError);
    expect(() => outboxEventOf(streamRecord(item))).toThrow(message);
  });

  it('refuses an insert without its new image: the stream must show new images', () => {
    const record = streamRecord({ ...eventKey('cust-a', 1), ...recordedEvent('cust-a', 1) });
    delete record.dynamodb?.NewImage;

    expect(() => outboxEventOf(record)).toThrow(/NEW_IMAGE/);
  });
});
