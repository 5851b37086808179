import type { AttributeValue as SdkAttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { eventKey } from '../../shared/aws/table-keys';
import type { LifecycleEventType, RecordedEvent } from '../../shared/core/events';

let sequenceNumber = 1_000;

const image = (item: Record<string, unknown>) =>
  marshall(item, { removeUndefinedValues: true }) as Record<string, SdkAttributeValue> as Record<string, AttributeValue>;

/** A record of the table's stream as Lambda's trigger delivers it (a NEW_IMAGE stream). */
export function streamRecord(
  item: Record<string, unknown> & { pk: string; sk: string },
  { eventName = 'INSERT', sequence = String(++sequenceNumber) }: { eventName?: DynamoDBRecord['eventName']; sequence?: string } = {},
): DynamoDBRecord {
  return {
    eventID: `event-${sequence}`,
    eventName,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    eventSourceARN: 'arn:aws:dynamodb:us-east-1:123456789012:table/keyplan-test/stream/2026-01-01T00:00:00.000',
    dynamodb: {
      ApproximateCreationDateTime: 1_767_225_600,
      Keys: image({ pk: item.pk, sk: item.sk }),
      ...(eventName === 'REMOVE' ? {} : { NewImage: image(item) }),
      SequenceNumber: sequence,
      SizeBytes: 100,
      StreamViewType: 'NEW_IMAGE',
    },
  };
}

/** A recorded event as its outbox item holds it (customer-ledger.ts's outboxPuts). */
export function recordedEvent(
  customerId: string,
  sequence: number,
  type: LifecycleEventType = 'KeyProvisioned',
  detail: RecordedEvent['detail'] = { keyId: `key-${sequence}`, fingerprint: 'a1b2c3d4' },
): RecordedEvent {
  return {
    eventId: `${customerId}-event-${sequence}`,
    customerId,
    sequence,
    type,
    time: '2026-01-01T00:00:00.000Z',
    correlationId: `attempt-of-${customerId}`,
    detail,
  };
}

/** The stream record of an outbox item's insert. */
export const outboxRecord = (recorded: RecordedEvent, sequence?: string) =>
  streamRecord({ ...eventKey(recorded.customerId, recorded.sequence), ...recorded, expiresAt: 1_800_000_000 }, sequence ? { sequence } : {});

export const streamEvent = (records: DynamoDBRecord[]): DynamoDBStreamEvent => ({ Records: records });
