/** Item keys of the one table (DESIGN §2), shared by its adapters. */

export const PROFILE_SK = 'PROFILE';
export const regKey = (registrationId: string) => ({ pk: `REG#${registrationId}`, sk: 'REG' });
export const customerPk = (customerId: string) => `CUSTOMER#${customerId}`;
/** The customer's profile: its record, and the one serialization point of its operations (DESIGN §7). */
export const profileKey = (customerId: string) => ({ pk: customerPk(customerId), sk: PROFILE_SK });
/** Every key item's sort key starts with this: a Query on the customer's partition finds them all. */
export const KEY_SK_PREFIX = 'KEY#';
export const keyItemKey = (customerId: string, keyId: string) => ({ pk: customerPk(customerId), sk: `${KEY_SK_PREFIX}${keyId}` });

/** Name of the sparse GSI over (dueType, dueAt): an item is in it only while a job has work on it. */
export const DUE_INDEX = 'due';

export { DAY_MS, DUE, type DueType, KEY_DUE_TYPES } from '../core/model';

/** A shard's item: its count of placed keys, its state, and the reconciler's last inventory of it. */
export const shardKey = (shardId: string) => ({ pk: `SHARD#${shardId}`, sk: 'SHARD' });

/** A customer's lifecycle events sort by their sequence number (12 digits: string order is number order). */
export const EVENT_SK_PREFIX = 'EVENT#';
export const eventKey = (customerId: string, sequence: number) => ({
  pk: customerPk(customerId),
  sk: `${EVENT_SK_PREFIX}${String(sequence).padStart(12, '0')}`,
});
