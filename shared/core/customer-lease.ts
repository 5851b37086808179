import { randomUUID } from 'node:crypto';
import { CustomerBusyError, LeaseLostError, NoShardCapacityError, NotFoundError, TransientAwsError } from '../errors';
import { logger } from '../logger';
import type {
  AcquireRequest,
  CustomerChange,
  CustomerLedger,
  CustomerRecord,
  CustomerStatus,
  Lease,
  LeaseIntent,
  TrackedKeyState,
} from './customer-record';

export interface LeaseDeps {
  ledger: CustomerLedger;
  /** Leases are times of this clock, never of an event: a late event must not write a dead lease. */
  clock: () => Date;
  settings: {
    leaseSeconds: number;
    /** How often the sweep finishes interrupted operations: a blocked customer's wait, at worst. */
    sweepSeconds: number;
  };
}

export interface LeaseRequest {
  intent: LeaseIntent;
  /** The sweep finishes it should the holder die (see Lease.mustFinish). */
  mustFinish: boolean;
  status?: readonly CustomerStatus[] | undefined;
  key?: { keyId: string; states: readonly TrackedKeyState[] } | undefined;
  setStatus?: CustomerStatus | undefined;
  takeOverInterrupted?: AcquireRequest['takeOverInterrupted'];
}

export type LeaseOutcome = { kind: 'held'; lease: HeldLease } | { kind: 'refused'; customer: CustomerRecord };

/**
 * Takes the customer's lease for one operation.
 * @throws NotFoundError when the customer has no record
 * @throws CustomerBusyError while another operation holds it, with the real wait as Retry-After
 */
export async function acquireCustomer(customerId: string, request: LeaseRequest, deps: LeaseDeps): Promise<LeaseOutcome> {
  const owner = `${request.intent.operation}-${randomUUID()}`;
  const now = deps.clock();
  const until = now.getTime() + deps.settings.leaseSeconds * 1000;
  const acquire: AcquireRequest = { owner, until, ...request };
  const outcome = await deps.ledger.acquire(customerId, acquire, now);
  switch (outcome.kind) {
    case 'acquired':
      return { kind: 'held', lease: new HeldLease(customerId, owner, until, outcome.customer, outcome.interrupted, deps) };
    case 'refused':
      return { kind: 'refused', customer: outcome.customer };
    case 'not-found':
      throw new NotFoundError(`no customer ${customerId}`);
    case 'busy':
      throw busyError(customerId, outcome.holder, now, deps.settings.sweepSeconds);
  }
}

/**
 * The wait a caller should be told: what the holder's lease has left, or, when its holder died
 * with work to finish, until the sweep has finished it.
 */
export function busyError(customerId: string, holder: Lease, now: Date, sweepSeconds: number): CustomerBusyError {
  const left = Math.ceil((holder.until - now.getTime()) / 1000);
  const seconds = left > 0 ? left : holder.mustFinish ? sweepSeconds : 1;
  return new CustomerBusyError(
    `another change to customer ${customerId} is running`,
    Math.max(1, seconds),
  );
}

/** A lease this operation holds: check it before every side effect, write with its release. */
export class HeldLease {
  #until: number;
  #settled = false;
  /** How often `ensure` ran: each side effect is preceded by one, so one less have completed. */
  #checks = 0;
  /** The shard this lease counted the operation's new key on; a lease taken over keeps its count. */
  #placed: string | undefined;

  constructor(
    readonly customerId: string,
    readonly owner: string,
    until: number,
    /** The record as it was when the lease was taken: nobody else changes it while it is held. */
    readonly customer: CustomerRecord,
    /** The expired lease this one took over, whose holder's work must be finished. */
    readonly interrupted: Lease | undefined,
    private readonly deps: LeaseDeps,
  ) {
    this.#until = until;
    this.#placed = interrupted?.placed;
  }

  /** The shard the new key is counted on already (its commit must not count it again). */
  get placed(): string | undefined {
    return this.#placed;
  }

  /**
   * Reserves the shard's room for the operation's new key before anything is made there (a
   * drain's move), under the same condition as a registration's claim: two moves at once, or a
   * reconcile's inventory landing meanwhile, cannot both take the last place. Nothing is done yet
   * when the shard is full, so the lease is released.
   * @throws NoShardCapacityError when the shard is at its mark or no longer accepts customers
   * @throws LeaseLostError
   */
  async place(placement: { shardId: string; highWaterKeys: number }): Promise<void> {
    if (this.#placed === placement.shardId) return;
    const outcome = await this.deps.ledger.place(this.customerId, this.owner, placement, this.deps.clock());
    if (outcome === 'placed') {
      this.#placed = placement.shardId;
      return;
    }
    if (outcome === 'lost') {
      this.#settled = true;
      throw new LeaseLostError(`the lease on customer ${this.customerId} was lost`, 1);
    }
    await this.release();
    throw new NoShardCapacityError(`shard ${placement.shardId} has no room for customer ${this.customerId}`);
  }

  /**
   * Before each side effect (an AWS call that changes something, an email): the lease must have
   * at least half its time left, or be renewed. A holder whose lease ran out and was taken over
   * stops here, before doing anything more.
   * @throws LeaseLostError when another operation took the customer over
   */
  async ensure(): Promise<void> {
    this.#checks++;
    const now = this.deps.clock();
    if (this.#until - now.getTime() >= (this.deps.settings.leaseSeconds * 1000) / 2) return;
    const until = now.getTime() + this.deps.settings.leaseSeconds * 1000;
    if (!(await this.deps.ledger.renew(this.customerId, this.owner, until, now))) {
      this.#settled = true;
      throw new LeaseLostError(`the lease on customer ${this.customerId} was lost`, 1);
    }
    this.#until = until;
  }

  /** Writes the operation's changes and releases the lease, at once. @throws LeaseLostError */
  async commit(change: CustomerChange, now: Date): Promise<void> {
    try {
      await this.deps.ledger.commit(this.customerId, this.owner, change, now, this.customer.eventSeq);
    } catch (error) {
      // Lost: nothing was written and the lease is another's. Anything else may or may not have
      // been written; releasing or abandoning is conditioned on still holding it, so either is safe.
      if (error instanceof LeaseLostError) this.#settled = true;
      throw error;
    }
    this.#settled = true;
  }

  /** Nothing changed: the lease goes, unchanged. */
  async release(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    await this.deps.ledger.release(this.customerId, this.owner, this.#placed).catch((error: unknown) => {
      logger.warn('customer lease release failed; it expires by itself', { customerId: this.customerId, error });
    });
  }

  /** Work is left half done: the lease expires now and the sweep finishes what it was doing. */
  async abandon(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    await this.deps.ledger.abandon(this.customerId, this.owner, this.deps.clock()).catch((error: unknown) => {
      logger.warn('customer lease hand-over failed; the sweep finishes it once it expires', {
        customerId: this.customerId,
        error,
      });
    });
  }

  /**
   * Runs `work` under this lease: a failure before the commit releases it (nothing half done) or
   * abandons it to the sweep (work half done), as `onFailure` says. `abandon` still releases when
   * nothing was done at all: the first side effect was throttled (AWS did not carry it out), the
   * lease changed nothing itself, and it finishes nobody else's work. A throttled first call then
   * leaves the customer free at once instead of waiting for the sweep.
   */
  async run<T>(work: () => Promise<T>, onFailure: 'release' | 'abandon', leaseChangedNothing = true): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const nothingDone =
        leaseChangedNothing &&
        !this.interrupted &&
        this.#checks <= 1 &&
        error instanceof TransientAwsError &&
        error.notApplied;
      if (!(error instanceof LeaseLostError)) {
        await (onFailure === 'release' || nothingDone ? this.release() : this.abandon());
      }
      throw error;
    } finally {
      // A path that returns without committing changed nothing.
      await this.release();
    }
  }
}
