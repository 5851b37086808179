import type { CustomerStatus } from '../core/customer-record';
import type { CustomerKey, DueType } from '../core/model';

/**
 * The console's reads (issue 17): what the overview and a customer page show, read the cheapest
 * way the table allows. Never a key value: ids, fingerprints, states and dates only.
 */

/** A key item as one partition of the due index holds it, with only what the overview counts. */
export interface DueEntry {
  dueAt: string;
  /** RETIRING keys: the day the key stops working (the REMIND partition's dueAt is the reminder). */
  retireAt?: string | undefined;
  /** None: the home shard. */
  shard?: string | undefined;
}

/** The sparse due index, partition by partition. */
export interface DueIndex {
  /** Every item of the partition, oldest due first, a page at a time. */
  entries(dueType: DueType): AsyncIterable<DueEntry>;
}

/** The provisioning queues' depth: messages waiting and messages given up on. */
export interface QueueDepths {
  /** Summed over the provisioning queue of every shard, and over their dead-letter queues. */
  depths(): Promise<{ queue: number; dlq: number; queues: number }>;
}

/** A registration that ended FAILED, as the table keeps it until its TTL. */
export interface FailedRegistration {
  registrationId: string;
  customerId: string;
  tier: string;
  failureReason?: string | undefined;
  updatedAt: string;
}

export interface RecentFailures {
  failures: FailedRegistration[];
  /** FAILED registrations kept in all. */
  total: number;
  /** When they were read, for an answer kept a while (refreshing.ts). */
  asOf?: string | undefined;
}

export interface FailedRegistrations {
  /** FAILED registrations still kept (REGISTRATION_RETENTION_DAYS), newest first, at most `limit`. */
  recentFailures(limit: number): Promise<RecentFailures>;
}

export interface TierChange {
  from: string;
  to: string;
  /** The HTTP request id, the billing event id or the CLI's or console's own id. */
  requestId?: string | undefined;
  at: string;
}

/** The customer's profile with its tier history and every key item (ORPHANED ones too). */
export interface CustomerProfile {
  customerId: string;
  email: string;
  name?: string | undefined;
  tier: string;
  status: CustomerStatus | string;
  registrationId: string;
  shard?: string | undefined;
  emailedKeyId?: string | undefined;
  createdAt: string;
  updatedAt: string;
  revokedAt?: string | undefined;
  tierHistory: TierChange[];
  keys: CustomerKey[];
}

export interface CustomerProfiles {
  /** Undefined for an id the table has no profile of. */
  profileOf(customerId: string): Promise<CustomerProfile | undefined>;
}
