import type { CustomerKey, DueType } from '../customers/model';

/** The key items of the table, as the rotation and retirement jobs see them. */
export interface KeyStore {
  /** Keys in one partition of the due index whose time has come, oldest first. */
  findDue(dueType: DueType, now: Date, limit: number): Promise<CustomerKey[]>;
  countDue(dueType: DueType, now: Date): Promise<number>;
  /** The customer's key items, read consistently. */
  keysOf(customerId: string): Promise<CustomerKey[]>;
  /**
   * Moves a key to its next due step if it is still where `from` says; false when it was not.
   * Only for steps that change nothing but the key's place in the due index (the reminder):
   * everything else is written with the customer's lease (CustomerLedger.commit).
   */
  advance(key: CustomerKey, from: DueType, to: { dueType: DueType; dueAt: string }, now: Date): Promise<boolean>;
}
