import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import type { LifecycleEventType, RecordedEvent } from '../../shared/core/events';
import { publishedDetail } from '../../shared/events/publish-events';
import { loadEventSchema, validateAgainst } from './json-schema';

/** A lifecycle event as the outbox wrote it: the customer's `EVENT#<12-digit sequence>` item. */
export interface EventItem extends RecordedEvent {
  pk: string;
  sk: string;
  /** Epoch seconds: the audit trail's TTL. */
  expiresAt: number;
}

/** The customer's event items read straight from its partition, in sequence order (the sort key's). */
export async function eventItemsOf(dynamo: DynamoDBDocumentClient, tableName: string, customerId: string): Promise<EventItem[]> {
  const items: Record<string, NativeAttributeValue>[] = [];
  let start: Record<string, NativeAttributeValue> | undefined;
  do {
    const page = await dynamo.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :event)',
        ExpressionAttributeValues: { ':pk': `CUSTOMER#${customerId}`, ':event': 'EVENT#' },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items as EventItem[];
}

/** The event's EventBridge `detail` as the publisher sends it (shared/events/publish-events.ts). */
export function publishedDetailOf(item: EventItem): Record<string, unknown> {
  const { eventId, customerId, sequence, time, correlationId, type, detail } = item;
  return publishedDetail({ eventId, customerId, sequence, time, correlationId, type, detail });
}

/** Where the event's published detail breaks docs/events/<type>.schema.json; none when it fits. */
export function schemaViolations(item: EventItem): string[] {
  return validateAgainst(loadEventSchema(item.type), publishedDetailOf(item)).map((problem) => `${item.type}#${item.sequence} ${problem}`);
}

/** The types of a trail, for messages that show the whole history at once. */
export const typesOf = (items: readonly EventItem[]): LifecycleEventType[] => items.map((item) => item.type);
