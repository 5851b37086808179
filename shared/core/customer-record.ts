import type { LifecycleEvent } from './events';
import type { CustomerKey, DueType, KeyState } from './model';

/**
 * PENDING: reserved by a registration that has not recorded its key yet. ACTIVE: registered.
 * REVOKED: every key disabled (or being disabled: a revocation sets it first). UNREGISTERED: a
 * registration reserved the customer and then failed; the next registration may take it.
 */
export type CustomerStatus = 'PENDING' | 'ACTIVE' | 'REVOKED' | 'UNREGISTERED';

/** The states a key has in the customer's own list: those with work left on them. */
export type TrackedKeyState = Extract<KeyState, 'ACTIVE' | 'RETIRING' | 'DISABLED'>;

export type LeaseOperation =
  | 'register'
  | 'rotate'
  | 'change-tier'
  | 'revoke'
  | 'retire'
  | 'reconcile'
  | 'owed-email'
  | 'repair';

/** What a lease holder is doing: enough for the sweep to finish it should the holder die. */
export interface LeaseIntent {
  operation: LeaseOperation;
  /** rotate: the key being replaced. owed-email: the key being sent. */
  keyId?: string | undefined;
  /** rotate: the grace the old key gets. */
  graceDays?: number | undefined;
  /** change-tier: the tier being moved to. */
  tier?: string | undefined;
  /** rotate: the shard the successor is made in, when the rotation moves the customer (a drain). */
  toShard?: string | undefined;
  /**
   * The shard the lease already counted the operation's new key on (CustomerLedger.place): its
   * commit counts it no more, and a lease that ends without a commit gives it back.
   */
  placed?: string | undefined;
}

/**
 * The customer's lease: at most one operation at a time changes a customer's keys or profile.
 * `until` is epoch milliseconds from the clock (never from an event's time).
 */
export interface Lease extends LeaseIntent {
  owner: string;
  until: number;
  /**
   * The holder leaves AWS in a state that needs finishing if it dies (a key in no plan, a
   * successor that may have been emailed, keys half disabled): once expired, only the sweep
   * (`takeOverInterrupted`) or the same registration's next attempt may take such a lease.
   */
  mustFinish: boolean;
}

/** The customer record: the one serialization point of every operation on a customer. */
export interface CustomerRecord {
  customerId: string;
  email: string;
  tier: string;
  status: CustomerStatus;
  registrationId: string;
  /** The shard new keys of the customer are made in; none: the home shard. */
  shard?: string | undefined;
  /**
   * Keys of the list that live in another shard than `shard`, by id: those a move left behind
   * until they are deleted (a drain's old key in its grace period, then retained disabled).
   */
  keyShards?: Readonly<Record<string, string>> | undefined;
  /** Every key with work left on it, by id; the key items hold the details. */
  keys: Readonly<Record<string, TrackedKeyState>>;
  /** The newest key whose value the customer was emailed. */
  emailedKeyId?: string | undefined;
  /** Time of the newest billing event applied (newest wins). */
  tierEventAt?: string | undefined;
  /** +1 with every committed write: a per-customer sequence. */
  version: number;
  /** Lifecycle events written for the customer so far: the last one's sequence number (none: 0). */
  eventSeq?: number | undefined;
  lease?: Lease | undefined;
}

export interface AcquireRequest {
  owner: string;
  until: number;
  intent: LeaseIntent;
  mustFinish: boolean;
  /** The customer must have one of these statuses. */
  status?: readonly CustomerStatus[] | undefined;
  /** And this key one of these states in the customer's list. */
  key?: { keyId: string; states: readonly TrackedKeyState[] } | undefined;
  /**
   * Only the sweep: take over the expired lease of `owner` (the one it listed; none: the customer
   * had no lease), whose holder must be finished. Any other lease is left alone, even expired: it
   * is not the one the sweep listed, and taking it would write the listed intent into it.
   */
  takeOverInterrupted?: { owner: string | undefined } | undefined;
  /**
   * Written with the lease: a revocation marks the customer REVOKED before it disables a key, so
   * from that moment no rotation or tier change starts.
   */
  setStatus?: CustomerStatus | undefined;
}

export type AcquireOutcome =
  /** `interrupted`: the expired lease this one replaced, when its holder had to be finished. */
  | { kind: 'acquired'; customer: CustomerRecord; interrupted?: Lease | undefined }
  /** Another operation holds the customer; `holder` is its lease. */
  | { kind: 'busy'; holder: Lease }
  | { kind: 'not-found' }
  /** The customer or the key is not in a state the operation may act on. */
  | { kind: 'refused'; customer: CustomerRecord };

export interface Due {
  type: DueType;
  at: string;
}

/** A key item written with a commit: a new one, or fields of an existing one. */
export type KeyItemWrite =
  | { kind: 'put'; key: CustomerKey; due?: Due | undefined; replaces?: string | undefined }
  | {
      kind: 'update';
      keyId: string;
      set?: Partial<Pick<CustomerKey, 'state' | 'usagePlanId' | 'tier' | 'retireAt' | 'successorKeyId'>> | undefined;
      /** A new place in the due index, or `null` to leave it. */
      due?: Due | null | undefined;
    };

/** Everything an operation changes, written at once with the lease's release. */
export interface CustomerChange {
  status?: CustomerStatus | undefined;
  /** A tier change, appended to the tier history. */
  tier?: { from: string; to: string; cause: string } | undefined;
  /** The time of the billing event applied (kept even when the tier did not change). */
  tierEventAt?: string | undefined;
  /** Key list entries to set, or remove (`null`). */
  keys?: Readonly<Record<string, TrackedKeyState | null>> | undefined;
  emailedKeyId?: string | undefined;
  /** The customer moves to this shard: its next keys are made there (a drain's rotation). */
  shard?: string | undefined;
  /** The whole new `keyShards` map (the lease holder read the current one); `{}` removes it. */
  keyShards?: Readonly<Record<string, string>> | undefined;
  /**
   * Keys placed in a shard, by shard id (+1 made, -1 deleted): the count placement checks against
   * the shard's high-water mark. Only shards with a mark are counted.
   */
  placedKeys?: Readonly<Record<string, number>> | undefined;
  items?: readonly KeyItemWrite[] | undefined;
  /** The facts of this change, written with it (the outbox and audit trail, DESIGN §9). */
  events?: readonly LifecycleEvent[] | undefined;
  /**
   * The registration follows: REVOKED with its customer, or ACTIVE once the email it owed is
   * settled (then conditioned on `attemptId`). It leaves the sweep's partition either way.
   */
  registration?: { registrationId: string; state: 'ACTIVE' | 'REVOKED'; attemptId?: string | undefined } | undefined;
}

/** A customer the sweep lists: who held its expired lease, and to do what. */
export interface InterruptedLease {
  customerId: string;
  /** The lease's holder, which the sweep's take-over is conditioned on (none: no lease). */
  owner?: string | undefined;
  intent: LeaseIntent | undefined;
}

/**
 * The customer record as the serialization point. Every operation that changes a customer's keys
 * or profile takes the lease with one conditional write (which also returns the record), checks
 * it still holds the lease before each side effect, and writes everything it changed together
 * with the release in one more. Registration takes the lease through its own claim
 * (RegistrationStore), with the same record and conditions.
 */
export interface CustomerLedger {
  /**
   * Takes the lease if nobody holds it (or its holder's lease expired and need not be finished),
   * the customer exists and the request's preconditions hold. One conditional write.
   */
  acquire(customerId: string, request: AcquireRequest, now: Date): Promise<AcquireOutcome>;
  /** Extends the lease; false when it is no longer `owner`'s. */
  renew(customerId: string, owner: string, until: number, now: Date): Promise<boolean>;
  /**
   * Writes the change and releases the lease, all or nothing. Its events are numbered after
   * `eventSeq`, the customer's count as the holder read it (the lease keeps it from moving).
   * @throws LeaseLostError when `owner` no longer holds the lease: nothing was written
   */
  commit(customerId: string, owner: string, change: CustomerChange, now: Date, eventSeq?: number): Promise<void>;
  /**
   * Gives the lease up unchanged, and the key it counted on `placed` (see `place`) back; a lease
   * no longer held is left alone.
   */
  release(customerId: string, owner: string, placed?: string): Promise<void>;
  /**
   * Counts one more key on the shard for `owner`'s operation, if the shard is below its mark and
   * accepts customers (as a registration's claim does), and notes it on the lease (`placed`), all
   * at once: a drain's move reserves its target's room before it makes anything there. A sweep
   * that takes the lease over inherits the count; its commit or release settles it.
   */
  place(customerId: string, owner: string, placement: { shardId: string; highWaterKeys: number }, now: Date): Promise<'placed' | 'shard-full' | 'lost'>;
  /**
   * Gives up a lease whose work must be finished: it expires at once and the customer is due
   * for the sweep.
   */
  abandon(customerId: string, owner: string, now: Date): Promise<void>;
  /**
   * Customers whose lease holder died or gave up with work to finish (the REPAIR partition, due
   * when the lease expired), oldest first, with the owner and intent of that lease: the sweep takes
   * over that lease only (conditioned on its owner) with the same intent, so a sweep that dies in
   * turn leaves the same work behind.
   */
  findInterrupted(now: Date, limit: number): Promise<InterruptedLease[]>;
}
