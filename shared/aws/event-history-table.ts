import { type DynamoDBDocumentClient, GetCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import type { NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import type { EventHistory, EventPage } from '../audit/ports';
import type { EventDetailValue, LifecycleEventType, RecordedEvent } from '../core/events';
import { guardDynamo } from './aws-errors';
import { queryPages } from './query-pages';
import { customerPk, EVENT_SK_PREFIX, eventKey, profileKey } from './table-keys';

type Item = Record<string, NativeAttributeValue>;

/**
 * The audit trail as the outbox left it: the customer's `EVENT#<sequence>` items, read from its
 * own partition in sort-key order backwards (the zero-padded number sorts as the number does), so
 * a page is one Query however long the history.
 */
export class EventHistoryTable implements EventHistory {
  readonly #client: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; tableName: string }) {
    this.#client = options.client;
    this.#table = options.tableName;
  }

  async page(customerId: string, request: { limit: number; before?: number | undefined }): Promise<EventPage> {
    const { limit, before } = request;
    const values: Item = { ':pk': customerPk(customerId), ':events': EVENT_SK_PREFIX };
    let condition = 'pk = :pk AND begins_with(sk, :events)';
    if (before !== undefined) {
      // Below `before` only: a range on the sort key, so no ExclusiveStartKey has to exist (an
      // event past its TTL is gone, and the page still continues where it should).
      values[':below'] = eventKey(customerId, before - 1).sk;
      condition = 'pk = :pk AND sk BETWEEN :events AND :below';
    }
    const input: QueryCommandInput = {
      TableName: this.#table,
      KeyConditionExpression: condition,
      ExpressionAttributeValues: values,
      ScanIndexForward: false,
      // One more than the page: whether an older event exists, so the last page says it is the
      // last instead of handing out a cursor to an empty one.
      Limit: limit + 1,
      // The trail of a change just made, as the operator who made it expects to see it.
      ConsistentRead: true,
    };
    const events: RecordedEvent[] = [];
    await queryPages(this.#client, input, (page) => {
      events.push(...(page.Items ?? []).map(toRecordedEvent));
      return events.length <= limit;
    });
    const shown = events.slice(0, limit);
    const last = shown.at(-1);
    return events.length > limit && last ? { events: shown, next: last.sequence } : { events: shown };
  }

  async knows(customerId: string): Promise<boolean> {
    const { Item: profile } = await guardDynamo(
      this.#client.send(
        new GetCommand({
          TableName: this.#table,
          Key: profileKey(customerId),
          ProjectionExpression: 'pk, #status, priorStatus, eventSeq',
          ExpressionAttributeNames: { '#status': 'status' },
          ConsistentRead: true,
        }),
      ),
    );
    if (!profile) return false;
    if (Number(profile.eventSeq ?? 0) > 0) return true;
    // As GET /customers/{customerId} judges it: a registration in flight shows what was before it.
    const status = profile.status === 'PENDING' ? (profile.priorStatus ?? 'UNREGISTERED') : profile.status;
    return typeof status === 'string' && status !== 'UNREGISTERED';
  }
}

/** An event item without its table attributes (pk, sk, expiresAt). */
export function toRecordedEvent(item: Item): RecordedEvent {
  return {
    sequence: Number(item.sequence),
    type: String(item.type) as LifecycleEventType,
    time: String(item.time),
    eventId: String(item.eventId),
    customerId: String(item.customerId),
    correlationId: String(item.correlationId),
    detail: toDetail(item.detail),
  };
}

/** The detail map as written: plain values, a list of strings as an array. */
function toDetail(value: unknown): Record<string, EventDetailValue> {
  const detail: Record<string, EventDetailValue> = {};
  if (typeof value !== 'object' || value === null) return detail;
  for (const [name, field] of Object.entries(value as Item)) {
    if (typeof field === 'string' || typeof field === 'number' || typeof field === 'boolean') detail[name] = field;
    else if (Array.isArray(field) || field instanceof Set) detail[name] = [...(field as Iterable<unknown>)].map(String);
  }
  return detail;
}
