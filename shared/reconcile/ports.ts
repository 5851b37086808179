import type { CustomerLedger } from '../core/customer-record';
import type { CustomerKey } from '../core/model';
import type { RegistrationStore } from '../core/ports';
import type { Shard, ShardKeys } from '../core/shards';

/** An API key as a listing shows it: never its value. */
export interface ListedKey {
  id: string;
  name: string;
  createdAt: Date;
  tags: Readonly<Record<string, string>>;
}

/** API Gateway as the reconciler sees it: what exists, and the repairs it makes. */
export interface KeyInventory {
  /** Every API key of the account and Region, page by page (GetApiKeys, without values). */
  listKeyPages(): AsyncIterable<ListedKey[]>;
  /** Ids of the keys in the plan, all pages (GetUsagePlanKeys). */
  keysInPlan(usagePlanId: string): Promise<string[]>;
  /** Whether the key still exists (GetApiKey without its value). */
  keyExists(keyId: string): Promise<boolean>;
  addKeyToPlan(usagePlanId: string, keyId: string): Promise<void>;
  removeKeyFromPlan(usagePlanId: string, keyId: string): Promise<void>;
  deleteKey(keyId: string): Promise<void>;
}

/** A key item, with the repair a failed tier change left on it. */
export interface KeyRecord extends CustomerKey {
  needsRepair?: { usagePlanId: string; since: string } | undefined;
}

/** The table as the reconciler sees it. */
export interface KeyRecords {
  /**
   * Every key item a job still has work on, page by page: the partitions of the sparse due index
   * hold every ACTIVE, RETIRING, DISABLED and ORPHANED key, so this reads them without a scan.
   */
  trackedKeyPages(): AsyncIterable<KeyRecord[]>;
  /** The current tier of each customer that has a profile. */
  tiersOf(customerIds: readonly string[]): Promise<Map<string, string>>;
  /**
   * The item's key is gone (deleted as an orphan, or found missing) and its customer has no
   * record to commit with: the item leaves the due index in `state`, if it is still as judged.
   */
  closeRecord(key: KeyRecord, state: 'DELETED' | 'MISSING', now: Date): Promise<void>;
  /**
   * Notes the shard's real key count (every key of its account and Region): placement stops at
   * the shard's high-water mark by this count too, rotations and retained keys included.
   */
  recordInventory?(shardId: string, accountKeys: number, now: Date): Promise<void>;
}

export interface ReconcileSettings {
  keyNamePrefix: string;
  /** Keys tagged with another stage are never touched (legacy keys without the tag: by name). */
  stage: string;
  /** Each shard is surveyed with its own inventory and plans. */
  shards: readonly Shard[];
  /**
   * A key younger than this may belong to a registration that is still running (created, not yet
   * recorded): it is neither deleted nor its record marked missing.
   */
  minKeyAgeMinutes: number;
  leaseSeconds: number;
  /** How often the sweep finishes interrupted operations: a busy customer's wait, at worst. */
  sweepSeconds: number;
}

export interface ReconcileDeps {
  inventory: ShardKeys<KeyInventory>;
  records: KeyRecords;
  ledger: CustomerLedger;
  /** Whether a key's registration may still record it. */
  registrations: Pick<RegistrationStore, 'getRegistration'>;
  clock: () => Date;
  settings: ReconcileSettings;
}
