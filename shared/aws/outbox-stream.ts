import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { type EventDetailValue, LIFECYCLE_EVENT_TYPES, type RecordedEvent } from '../core/events';
import { ValidationError } from '../errors';
import { fail, integer, isoDateTime, object, oneOf, refine, type Schema, text, validate } from '../validation';
import { EVENT_SK_PREFIX, eventKey } from './table-keys';

/** A detail value as the outbox writes it (core/events.ts's EventDetailValue); a string set reads as a list. */
const detailValue: Schema<EventDetailValue> = (value, field) => {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  const list = value instanceof Set ? [...(value as Set<unknown>)] : value;
  if (Array.isArray(list) && list.every((entry) => typeof entry === 'string')) return list as string[];
  return fail(field, 'must be a string, a number, true or false, or a list of strings');
};

const detailMap: Schema<Record<string, EventDetailValue>> = (value, field) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, 'must be a map');
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, detailValue(entry, `${field}.${key}`)]));
};

/** An outbox item (customer-ledger.ts's outboxPuts), its keys agreeing with its customer and number. */
const outboxItem = refine(
  object({
    pk: text(),
    sk: text(),
    eventId: text({ min: 1 }),
    customerId: text({ min: 1 }),
    sequence: integer({ min: 1 }),
    type: oneOf(LIFECYCLE_EVENT_TYPES),
    time: isoDateTime(),
    correlationId: text(),
    detail: detailMap,
  }),
  (item) => {
    const key = eventKey(item.customerId, item.sequence);
    return item.pk === key.pk && item.sk === key.sk;
  },
  "must be filed under its customer's partition and its sequence number",
);

/**
 * The lifecycle event a table's stream record brings: the new image of an inserted outbox item
 * (`EVENT#` sort key). Any other record (a profile, a key, a registration; a MODIFY or a REMOVE,
 * such as the TTL's) brings none. Only the item's own fields are read: the detail as written,
 * never anything else of the table.
 *
 * @throws ValidationError for an inserted outbox item that is not a well-formed event: a defect,
 *   which must fail its record rather than be skipped unnoticed
 */
export function outboxEventOf(record: DynamoDBRecord): RecordedEvent | undefined {
  if (record.eventName !== 'INSERT') return undefined;
  const image = record.dynamodb?.NewImage;
  const sk = image?.sk?.S ?? record.dynamodb?.Keys?.sk?.S;
  if (!sk?.startsWith(EVENT_SK_PREFIX)) return undefined;
  if (!image) throw new ValidationError('outbox item', 'the stream record has no new image: the stream must show NEW_IMAGE');
  const item = validate(outboxItem, unmarshall(image as Record<string, AttributeValue>), 'outbox item');
  return {
    eventId: item.eventId,
    customerId: item.customerId,
    sequence: item.sequence,
    type: item.type,
    time: item.time,
    correlationId: item.correlationId,
    detail: item.detail,
  };
}
