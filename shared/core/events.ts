/**
 * Lifecycle events (DESIGN §9): one per fact of a committed change of a customer or a key, written
 * in the same DynamoDB transaction as the change (the outbox), moved to EventBridge from there, and
 * kept with the customer as its audit trail. Ids, tiers, plans, fingerprints and times: never a
 * key value.
 */
export type LifecycleEventType =
  | 'KeyProvisioned'
  | 'KeyEmailed'
  | 'KeyRotated'
  | 'KeyDisabled'
  | 'KeyDeleted'
  | 'KeyMissing'
  | 'TierChanged'
  | 'CustomerRevoked'
  | 'CustomerReactivated'
  | 'RegistrationFailed'
  | 'OrphanKeyDeleted'
  | 'KeyRepaired';

export const LIFECYCLE_EVENT_TYPES: readonly LifecycleEventType[] = [
  'KeyProvisioned',
  'KeyEmailed',
  'KeyRotated',
  'KeyDisabled',
  'KeyDeleted',
  'KeyMissing',
  'TierChanged',
  'CustomerRevoked',
  'CustomerReactivated',
  'RegistrationFailed',
  'OrphanKeyDeleted',
  'KeyRepaired',
];

/** A detail's values: plain data, so that nothing but what was meant can reach an event. */
export type EventDetailValue = string | number | boolean | readonly string[] | undefined;

/** An event as a use case states it; the store adds what every event carries. */
export interface LifecycleEvent {
  type: LifecycleEventType;
  detail: Readonly<Record<string, EventDetailValue>>;
}

/** An event as written and published: EventBridge's `detail` is `detail` plus these fields. */
export interface RecordedEvent extends LifecycleEvent {
  /** Unique; consumers de-duplicate on it (delivery is at least once). */
  eventId: string;
  customerId: string;
  /** 1, 2, 3, ... per customer, in the order the changes committed. */
  sequence: number;
  /** When the change committed (ISO 8601). */
  time: string;
  /** The operation that made the change: its lease owner or registration attempt. */
  correlationId: string;
}

export const event = (type: LifecycleEventType, detail: LifecycleEvent['detail']): LifecycleEvent => ({ type, detail });
