import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { CustomerStatus } from '../core/customer-record';
import { DUE } from '../core/model';
import type { ClaimResult, Placement, RecordFailureInput, RecordKeyInput, RegistrationStore } from '../core/ports';
import type { Registration } from '../core/registration';
import { CustomerBusyError, RegistrationInProgressError, TransientAwsError } from '../errors';
import type { StalledRegistrations, UnclaimedRegistrations } from '../provisioning/ports';
import { cancellationReasons, conditionFailed, guardDynamo, ifConditionHolds, translateDynamoError } from './aws-errors';
import { LEASE_FREE, leaseItem, outboxPuts, retryAfterSeconds, toLease } from './customer-ledger';
import { type Item, placeKey, putNew, updateOf } from './item-requests';
import { queryPages } from './query-pages';
import { RegistrationReads, toRegistration } from './registration-reads';
import { DUE_INDEX, keyItemKey, profileKey, regKey, shardKey } from './table-keys';

const DAY_S = 86_400;

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

export interface RegistrationTableOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Unfinished claims and failed registrations expire after this; finished ones are kept. */
  retentionDays: number;
  /**
   * An unfinished registration is due for the resume sweep this long after its claim (or its
   * latest attempt, doubling with each attempt): the caller's own retries usually come first.
   */
  resumeAfterSeconds?: number;
}

/** What a claim's Put of a new customer answers when it found a profile the Update form may take. */
const CLAIM_AS_UPDATE: unique symbol = Symbol('claim as update');

/** The sweep's backoff stops doubling here: 15 minutes becomes at most 16 hours. */
const MAX_RESUME_DOUBLINGS = 6;

/**
 * The one DynamoDB table (DESIGN §2) behind the provisioning saga. The sweep's queries of it are
 * RegistrationTable's: register and the worker, which never run them, bundle this alone.
 */
export class RegistrationSagaTable extends RegistrationReads implements RegistrationStore {
  readonly #retentionSeconds: number;
  readonly #resumeAfterMs: number;

  constructor(options: RegistrationTableOptions) {
    super(options);
    this.#retentionSeconds = options.retentionDays * DAY_S;
    this.#resumeAfterMs = (options.resumeAfterSeconds ?? 900) * 1000;
  }

  async claim(registration: Registration, now: Date, placement?: Placement): Promise<ClaimResult> {
    // A re-activation finds a REVOKED profile whose history stays: the Update form. Anyone else
    // most likely finds no profile at all, and writes it whole with a Put (cheaper than an update
    // of eight attributes); a profile that exists after all (UNREGISTERED, or taken) cancels that
    // Put, and an UNREGISTERED one is claimed again with the Update form (see #putNewCustomer).
    if (!registration.reactivate) {
      const first = await this.#claimWith(registration, now, this.#putNewCustomer(registration, now), placement);
      if (first !== CLAIM_AS_UPDATE) return first;
    }
    const result = await this.#claimWith(
      registration,
      now,
      { Update: this.#reserveCustomer(registration, now) },
      placement,
    );
    // Only a Put answers CLAIM_AS_UPDATE.
    if (result === CLAIM_AS_UPDATE) throw new Error('the claim’s Update form asked for itself');
    return result;
  }

  /**
   * The claim's transaction: the registration item, `customer` (the profile's write) and, with a
   * placement, one more key counted on the shard, below its high-water mark and while it accepts.
   */
  async #claimWith(
    registration: Registration,
    now: Date,
    customer: TransactItem,
    placement: Placement | undefined,
  ): Promise<ClaimResult | typeof CLAIM_AS_UPDATE> {
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: {
                  ...regKey(registration.registrationId),
                  ...registration,
                  ...(placement ? { shard: placement.shardId, shardCounted: true } : {}),
                  expiresAt: this.#expiry(now),
                  // In the sweep's partition until it finishes: nothing is lost if every caller
                  // and every worker dies before then.
                  dueType: DUE.resume,
                  dueAt: this.#resumeAt(now, 0),
                },
                ConditionExpression: 'attribute_not_exists(pk)',
                // A replay learns the recorded result from the failed write itself: one call.
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
            customer,
            ...(placement ? [placeKey(this.table, shardKey(placement.shardId), placement.highWaterKeys, now.toISOString())] : []),
          ],
        }),
      );
      return {
        kind: 'claimed',
        registration: {
          ...registration,
          ...(placement ? { shard: placement.shardId, shardCounted: true } : {}),
          // A new profile has no events yet; an existing one's count is read when it is needed.
          ...('Put' in customer ? { eventSeq: 0 } : {}),
        },
      };
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw translateDynamoError(error);
      if (conditionFailed(reasons, 0)) {
        const seen = reasons[0]?.Item;
        const existing = seen
          ? toRegistration(unmarshall(seen))
          : await this.getRegistration(registration.registrationId);
        if (existing) return { kind: 'exists', registration: existing };
      }
      if (conditionFailed(reasons, 1)) {
        const seen = reasons[1]?.Item;
        const profile = seen ? unmarshall(seen) : undefined;
        // The Put only takes a customer that has no profile. One that is UNREGISTERED (its first
        // registration failed) is free too, if nobody holds its lease: the Update form judges that.
        if ('Put' in customer && (profile === undefined || profile.status === 'UNREGISTERED')) return CLAIM_AS_UPDATE;
        const refusal = profile ? customerRefusal(registration, profile) : undefined;
        if (refusal) return refusal;
      }
      if (placement && conditionFailed(reasons, 2)) return { kind: 'shard-full' };
      throw new TransientAwsError('claim was cancelled by a concurrent transaction', 1, { cause: error });
    }
  }

  /**
   * The claim's write of a customer that has no profile yet: the whole profile, as the Update form
   * (#reserveCustomer) would leave a missing one, in one Put: PENDING for the registration, its
   * status before (none: UNREGISTERED) in priorStatus, an empty key list, version 1 and, unless
   * the registration waits in the queue, the attempt's must-finish lease.
   *
   * Why a Put clobbers nothing: its condition is `attribute_not_exists(pk)`, so it writes only
   * where no profile is; a profile that exists, whatever it holds, cancels the transaction and is
   * judged from the item the cancellation returns. An UNREGISTERED profile (a first registration
   * that failed) is free for this registration, but is not replaced: it keeps its `version`
   * sequence and its `createdAt`, which only the Update form carries on (it holds nothing else:
   * email, tier, tierHistory, tierEventAt and emailedKeyId are written once a customer records a
   * key, and a customer that did never returns to UNREGISTERED). That costs such a
   * customer's next registration one cancelled transaction; a brand-new customer, the usual case,
   * makes one write.
   */
  #putNewCustomer(registration: Registration, now: Date): TransactItem {
    const at = now.toISOString();
    const profile: Item = {
      ...profileKey(registration.customerId),
      customerId: registration.customerId,
      registrationId: registration.registrationId,
      status: 'PENDING',
      priorStatus: 'UNREGISTERED',
      createdAt: at,
      updatedAt: at,
      keys: {},
      version: 1,
    };
    if (registration.state !== 'QUEUED') {
      profile.lease = registrationLease(registration.attemptId, registration.leaseExpiresAt);
    }
    // No profile, so no lease either: nobody holds the customer. The item it finds tells an
    // UNREGISTERED customer from a revoked or taken one, and a busy one's holder.
    const { Put } = putNew(this.table, profile);
    return { Put: { ...Put, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } };
  }

  /**
   * The claim's write of the customer profile: reserved for the registration (PENDING, its status
   * before kept in priorStatus for a failure to return to) and, unless the registration waits in
   * the queue, leased to its attempt. Must-finish: a crashed attempt may have created a key that
   * only this registration's next attempt (takeOver) may record or delete.
   */
  #reserveCustomer(registration: Registration, now: Date) {
    const sets = [
      'customerId = :customerId',
      'registrationId = :registrationId',
      '#status = :pending',
      // Right-hand sides read the item as it was: the status before this write.
      'priorStatus = if_not_exists(#status, :unregistered)',
      'createdAt = if_not_exists(createdAt, :at)',
      'updatedAt = :at',
      '#keys = if_not_exists(#keys, :noKeys)',
      '#version = if_not_exists(#version, :zero) + :one',
    ];
    const values: Item = {
      ':customerId': registration.customerId,
      ':registrationId': registration.registrationId,
      ':pending': 'PENDING',
      ':unregistered': 'UNREGISTERED',
      ':at': now.toISOString(),
      ':noKeys': {},
      ':nowMs': now.getTime(),
    };
    if (registration.state !== 'QUEUED') {
      sets.push('#lease = :lease');
      values[':lease'] = registrationLease(registration.attemptId, registration.leaseExpiresAt);
    }
    let free = 'attribute_not_exists(pk) OR #status = :unregistered';
    if (registration.reactivate) {
      free += ' OR #status = :revoked';
      values[':revoked'] = 'REVOKED';
    }
    return {
      ...updateOf(this.table, profileKey(registration.customerId), `SET ${sets.join(', ')}`, `(${free}) AND ${LEASE_FREE}`, values),
      // Tells a revoked customer from a taken one, and a busy one's holder.
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    };
  }

  async takeOver(
    registration: Registration,
    attempt: { attemptId: string; leaseExpiresAt: number },
    now: Date,
  ): Promise<Registration | undefined> {
    const at = now.toISOString();
    const state = registration.state === 'QUEUED' ? 'PENDING' : registration.state;
    const resumeAttempts = (registration.resumeAttempts ?? 0) + 1;
    const nowMs = now.getTime();
    try {
      await this.#transact([
        this.#update(
          regKey(registration.registrationId),
          // A QUEUED registration becomes PENDING: from now on a crash may leave a key behind,
          // and the next attempt must look for it.
          'SET attemptId = :attemptId, leaseExpiresAt = :lease, updatedAt = :now, #state = :state, dueType = :resume, dueAt = :resumeAt ADD resumeAttempts :one',
          // Only the attempt that saw the expired lease of `registration.attemptId` wins.
          'attemptId = :previous AND leaseExpiresAt < :nowMs AND #state = :seen',
          {
            ':state': state,
            ':seen': registration.state,
            ':attemptId': attempt.attemptId,
            ':lease': attempt.leaseExpiresAt,
            ':now': at,
            ':previous': registration.attemptId,
            ':nowMs': nowMs,
            ':resume': DUE.resume,
            ':resumeAt': this.#resumeAt(now, resumeAttempts),
          },
        ),
        {
          Update: {
            ...updateOf(
              this.table,
              profileKey(registration.customerId),
              'SET #lease = :lease, #version = if_not_exists(#version, :zero) + :one, updatedAt = :at',
              // The registration's previous attempt's lease passes on (even unexpired: the
              // registration's own lease has expired, so that attempt stops before its next
              // write); anyone else's only when it leaves nothing to finish.
              `registrationId = :registrationId AND (${LEASE_FREE} OR #lease.#owner = :previous)`,
              {
                ':lease': registrationLease(attempt.attemptId, attempt.leaseExpiresAt, registration.state === 'EMAIL_PENDING'),
                ':at': at,
                ':registrationId': registration.registrationId,
                ':nowMs': nowMs,
                ':previous': registration.attemptId,
              },
            ),
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        },
      ]);
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (conditionFailed(reasons, 0)) return undefined;
      if (conditionFailed(reasons, 1)) {
        const seen = reasons?.[1]?.Item;
        const holder = seen ? toLease(unmarshall(seen).lease) : undefined;
        throw new CustomerBusyError(
          `another operation holds customer ${registration.customerId}`,
          retryAfterSeconds(holder, now),
        );
      }
      throw translateDynamoError(error);
    }
    // A successful transaction returns no item: the registration is what was just written.
    return {
      ...registration,
      attemptId: attempt.attemptId,
      leaseExpiresAt: attempt.leaseExpiresAt,
      state,
      resumeAttempts,
      updatedAt: at,
    };
  }

  /**
   * One transaction: the registration (its key, its state, its lease gone), the key's item, and the
   * customer (ACTIVE, email and tier, the key listed, the lease released).
   *
   * The key's item is a Put, conditioned on there being none, rather than an update of each of
   * its attributes: it is new, and nothing else can have written it.
   * - Nobody else writes an item for this key id. Key ids are API Gateway's, one per key; this key
   *   is the one made under the name derived from this registration. Rotation's commit puts items
   *   for its successors only (other keys, named `-g<generation>`); rotation, retirement, tier
   *   changes, the reconciler and the sweep update existing items only (`attribute_exists(pk)`,
   *   or conditions on their state) and never create one; the orphan item recordFailure writes
   *   names a key of a registration that failed, which records no key afterwards (below).
   * - This registration writes it at most once. The profile's condition (`lease.owner` is this
   *   attempt) holds for one transaction only: this one, or recordFailure's, removes the lease,
   *   and an attempt id is a fresh UUID that no later write leases the customer to again. So a
   *   second record of the same attempt (a repeat after a lost answer, say) is cancelled, and
   *   answered as a lost lease. A later attempt of the same registration never records a key
   *   either: after this transaction the registration is ACTIVE (replays end at the claim) or
   *   EMAIL_PENDING (its next attempt settles the email through the customer ledger's commit);
   *   after recordFailure it is FAILED (replayed as the failure), and a registration that holds a
   *   key never expires (expiresAt is removed here), so its id cannot be claimed afresh.
   * Should the item exist all the same, the condition cancels the whole transaction: nothing of
   * what that item holds (a rotation's RETIRING state, a later tier) is overwritten, and the
   * attempt fails loudly instead of recording over it.
   *
   * The registration's and the profile's writes stay updates: other writers share those items
   * (the resume sweep, revocation and the ledger's commits), and each writes only what changes.
   */
  async recordKey(input: RecordKeyInput): Promise<Registration> {
    const { registration, keyId, fingerprint, state, rotateAt, now, events = [] } = input;
    const at = now.toISOString();
    const eventSeq = await this.#eventSeqOf(registration);
    const active = state === 'ACTIVE';
    const { shard } = registration;
    try {
      await this.#transact([
        this.#update(
          regKey(registration.registrationId),
          // A registration that holds a key is kept: were it to expire, a replay would claim
          // it afresh and create a second key.
          // An EMAIL_PENDING registration stays due: the sweep sends the email it owes.
          'SET #state = :state, keyId = :keyId, keyFingerprint = :fp, leaseExpiresAt = :zero, updatedAt = :at REMOVE expiresAt' +
            (active ? ', dueType, dueAt' : ''),
          'attemptId = :attemptId',
          { ':state': state, ':keyId': keyId, ':fp': fingerprint, ':at': at, ':attemptId': registration.attemptId },
        ),
        // The key's item, new: written whole (see the note above), with what rotation and
        // retirement read: ACTIVE, generation 1, due for rotation at rotateAt.
        putNew(this.table, {
          ...keyItemKey(registration.customerId, keyId),
          customerId: registration.customerId,
          keyId,
          state: 'ACTIVE',
          usagePlanId: registration.usagePlanId,
          tier: registration.tier,
          ...(shard ? { shard } : {}),
          fingerprint,
          registrationId: registration.registrationId,
          createdAt: at,
          rotateAt,
          dueType: DUE.rotate,
          dueAt: rotateAt,
          generation: 1,
        }),
        this.#update(
          profileKey(registration.customerId),
          // emailedKeyId names a key only once its email went out: an owed email is recorded
          // by the commit that settles it (CustomerLedger). The version is there: the claim or
          // take-over that leased the customer to this attempt wrote it.
          'SET email = :email, tier = :tier, #status = :active, #keys.#k = :active, updatedAt = :at, #version = #version + :one' +
            (active ? ', emailedKeyId = :keyId' : '') +
            // SHARD is a DynamoDB reserved word: through a placeholder, like status and keys.
            (shard ? ', #shard = :shard' : '') +
            ', eventSeq = :eventSeq REMOVE #lease, priorStatus',
          // The claim reserved the customer for this registration; holding the lease is
          // holding the reservation.
          `#lease.#owner = :attemptId AND ${EVENT_SEQ_SEEN(eventSeq)}`,
          {
            ':email': registration.email,
            ':tier': registration.tier,
            ':active': 'ACTIVE',
            ':at': at,
            ':attemptId': registration.attemptId,
            ...(active ? { ':keyId': keyId } : {}),
            ...(shard ? { ':shard': shard } : {}),
            ...seqValues(eventSeq, events.length),
          },
          // A key id may hold any character: through a placeholder of its own.
          { '#k': keyId },
        ),
        ...this.#outbox(registration, eventSeq, at, events),
      ]);
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (conditionFailed(reasons, 0) || conditionFailed(reasons, 2)) throw takenOver();
      if (conditionFailed(reasons, 1)) {
        throw new Error(
          `key ${keyId} of customer ${registration.customerId} has an item already; registration ` +
            `${registration.registrationId} recorded nothing over it`,
          { cause: error },
        );
      }
      throw translateDynamoError(error);
    }
    return { ...registration, state, keyId, keyFingerprint: fingerprint, leaseExpiresAt: 0, updatedAt: at };
  }

  async recordFailure(input: RecordFailureInput): Promise<Registration> {
    const { registration, reason, detail, orphanKeyId, now, events = [] } = input;
    const { customerId, shard } = registration;
    const at = now.toISOString();
    const eventSeq = await this.#eventSeqOf(registration);
    const failRegistration = this.#update(
      regKey(registration.registrationId),
      FAIL_REGISTRATION + (orphanKeyId ? ', orphanKeyId = :orphan' : '') + ' REMOVE dueType, dueAt',
      'attemptId = :attemptId',
      {
        ...this.failValues(reason, detail, now),
        ':attemptId': registration.attemptId,
        ...(orphanKeyId ? { ':orphan': orphanKeyId } : {}),
      },
    );
    // An orphan goes into the cleanup partition of the due index, where the reconciler finds it
    // without scanning.
    const recordOrphan = orphanKeyId
      ? [
          {
            Put: {
              TableName: this.table,
              Item: {
                ...keyItemKey(customerId, orphanKeyId),
                customerId,
                keyId: orphanKeyId,
                state: 'ORPHANED',
                usagePlanId: registration.usagePlanId,
                tier: registration.tier,
                ...(shard ? { shard } : {}),
                registrationId: registration.registrationId,
                createdAt: at,
                dueType: DUE.cleanup,
                dueAt: at,
              },
            },
          },
        ]
      : [];
    const returnCustomer = this.#update(
      profileKey(customerId),
      `SET ${RETURN_TO_PRIOR_STATUS}, eventSeq = :eventSeq REMOVE #lease, priorStatus`,
      `#lease.#owner = :attemptId AND ${EVENT_SEQ_SEEN(eventSeq)}`,
      { ':unregistered': 'UNREGISTERED', ':at': at, ':attemptId': registration.attemptId, ...seqValues(eventSeq, events.length) },
    );
    // The key the claim counted on its shard will not be there (an orphan is deleted soon).
    const uncount = this.uncount(registration, at);
    try {
      await this.#transact([failRegistration, ...recordOrphan, returnCustomer, ...uncount, ...this.#outbox(registration, eventSeq, at, events)]);
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (conditionFailed(reasons, 0) || conditionFailed(reasons, 1 + recordOrphan.length)) throw takenOver();
      throw translateDynamoError(error);
    }
    return { ...registration, state: 'FAILED', failureReason: reason, orphanKeyId, leaseExpiresAt: 0, updatedAt: at };
  }

  /** The shard count a claim placed, given back: that key will never exist. */
  protected uncount({ shard, shardCounted }: Registration, at: string) {
    return shard && shardCounted ? [this.#update(shardKey(shard), 'SET updatedAt = :at ADD placedKeys :minusOne', undefined, { ':minusOne': -1, ':at': at })] : [];
  }

  async releaseLease(registration: Registration, now: Date): Promise<void> {
    // Two writes, not one transaction: either lease may be gone already, and that is fine.
    await Promise.all([
      this.#updateIfHolds(
        regKey(registration.registrationId),
        'SET leaseExpiresAt = :zero, updatedAt = :at',
        'attemptId = :attemptId',
        { ':at': now.toISOString(), ':attemptId': registration.attemptId },
      ),
      this.#updateIfHolds(profileKey(registration.customerId), 'REMOVE #lease', '#lease.#owner = :attemptId', {
        ':attemptId': registration.attemptId,
      }),
    ]);
  }

  /**
   * The customer's count of events, which the registration's writes number theirs after: known
   * from a claim that wrote a new profile, else read (the attempt holds the customer's lease, so
   * it cannot move before the write, whose condition checks it).
   */
  async #eventSeqOf(registration: Registration): Promise<number> {
    if (registration.eventSeq !== undefined) return registration.eventSeq;
    const result = await guardDynamo(
      this.client.send(
        new GetCommand({
          TableName: this.table,
          Key: profileKey(registration.customerId),
          ProjectionExpression: 'eventSeq',
          ConsistentRead: true,
        }),
      ),
    );
    return Number(result.Item?.eventSeq ?? 0);
  }

  /** One of a transaction's updates, on this table. */
  #update(key: Item, update: string, condition: string | undefined, values: Item, names?: Record<string, string>) {
    return { Update: updateOf(this.table, key, update, condition, values, names) };
  }

  /** One conditional update alone; a condition that does not hold is no error (see ifConditionHolds). */
  #updateIfHolds(key: Item, update: string, condition: string, values: Item) {
    return ifConditionHolds(this.client.send(new UpdateCommand(updateOf(this.table, key, update, condition, values))));
  }

  #transact(items: TransactItem[]) {
    return this.client.send(new TransactWriteCommand({ TransactItems: items }));
  }

  /** The registration's events, numbered after the customer's `eventSeq`, on behalf of its attempt. */
  #outbox(registration: Registration, eventSeq: number, at: string, events: RecordFailureInput['events'] = []) {
    return outboxPuts(this.table, { customerId: registration.customerId, correlationId: registration.attemptId, after: eventSeq, at }, events);
  }

  /** The values of FAIL_REGISTRATION. */
  protected failValues(reason: string, detail: string, now: Date): Item {
    return { ':failed': 'FAILED', ':reason': reason, ':detail': detail, ':at': now.toISOString(), ':expiresAt': this.#expiry(now) };
  }

  /** When the sweep may take the registration up after `attempts` resumes. */
  #resumeAt(now: Date, attempts: number): string {
    const delay = this.#resumeAfterMs * 2 ** Math.min(attempts, MAX_RESUME_DOUBLINGS);
    return new Date(now.getTime() + delay).toISOString();
  }

  #expiry(now: Date): number {
    return Math.floor(now.getTime() / 1000) + this.#retentionSeconds;
  }
}

/**
 * The queue worker's saga table: the saga's, and the failure of a registration no attempt holds,
 * for a message the worker cannot process. Apart so that register, which never fails a message,
 * does not bundle it.
 */
export class QueuedRegistrationTable extends RegistrationSagaTable implements UnclaimedRegistrations {
  async failUnclaimed(registrationId: string, failure: { reason: string; detail: string }, now: Date): Promise<boolean> {
    // The customer's profile is found through the registration: one read first (a rare path, for
    // messages the worker cannot process).
    const registration = await this.getRegistration(registrationId);
    if (!registration) return false;
    const nowMs = now.getTime();
    const failRegistration = updateOf(
      this.table,
      regKey(registrationId),
      `${FAIL_REGISTRATION} REMOVE dueType, dueAt`,
      'attribute_exists(pk) AND (#state = :queued OR (#state = :pending AND leaseExpiresAt < :nowMs))',
      { ...this.failValues(failure.reason, failure.detail, now), ':queued': 'QUEUED', ':pending': 'PENDING', ':nowMs': nowMs },
    );
    const returnCustomer = updateOf(
      this.table,
      profileKey(registration.customerId),
      `SET ${RETURN_TO_PRIOR_STATUS} REMOVE #lease, priorStatus`,
      // Still reserved for this registration, and nobody at work on it.
      'registrationId = :registrationId AND #status = :pending AND (attribute_not_exists(#lease) OR #lease.#until < :nowMs)',
      {
        ':unregistered': 'UNREGISTERED',
        ':at': now.toISOString(),
        ':registrationId': registrationId,
        ':pending': 'PENDING',
        ':nowMs': nowMs,
      },
    );
    // The key the claim counted on its shard will never be made; the registration's condition
    // lets only one failure give it back.
    const uncount = this.uncount(registration, now.toISOString());
    for (const customer of [[{ Update: returnCustomer }], []]) {
      try {
        await this.client.send(new TransactWriteCommand({ TransactItems: [{ Update: failRegistration }, ...customer, ...uncount] }));
        return true;
      } catch (error) {
        const reasons = cancellationReasons(error);
        if (conditionFailed(reasons, 0)) return false;
        // The profile moved on (another registration took it, or someone holds it): the message
        // still must not be retried forever, so the registration fails alone.
        if (!customer.length || !conditionFailed(reasons, 1)) throw translateDynamoError(error);
      }
    }
    return false;
  }
}

/** The whole registration table: the worker's, and the sweep's queries of the registrations nobody finished. */
export class RegistrationTable extends QueuedRegistrationTable implements StalledRegistrations {
  async findStalled(now: Date, limit: number): Promise<Registration[]> {
    const stalled: Registration[] = [];
    await queryPages(
      this.client,
      {
        TableName: this.table,
        IndexName: DUE_INDEX,
        KeyConditionExpression: 'dueType = :resume AND dueAt <= :now',
        ExpressionAttributeValues: { ':resume': DUE.resume, ':now': now.toISOString() },
        Limit: limit,
      },
      (page) => {
        stalled.push(...(page.Items ?? []).map(toRegistration));
        return stalled.length < limit;
      },
    );
    return stalled.slice(0, limit);
  }

  async stopResuming(registration: Registration, now: Date): Promise<void> {
    await ifConditionHolds(
      this.client.send(
        new UpdateCommand(
          updateOf(this.table, regKey(registration.registrationId), 'SET updatedAt = :at REMOVE dueType, dueAt', 'attemptId = :attemptId', {
            ':at': now.toISOString(),
            ':attemptId': registration.attemptId,
          }),
        ),
      ),
    );
  }
}

/**
 * A registration's failure: FAILED with its reason, its lease gone, expiring after the retention.
 * Needs `#state`, `:failed`, `:reason`, `:detail`, `:zero`, `:at`, `:expiresAt` (failValues).
 */
const FAIL_REGISTRATION =
  'SET #state = :failed, failureReason = :reason, failureDetail = :detail, leaseExpiresAt = :zero, updatedAt = :at, expiresAt = :expiresAt';

const takenOver = () => new RegistrationInProgressError('another attempt took over this registration', 1);

/** The values of EVENT_SEQ_SEEN and of the count after `added` events. */
const seqValues = (seen: number, added: number): Item => ({ ':eventSeq': seen + added, ':seenSeq': seen });

/** The customer's event count is still `seen` (`:seenSeq`): nobody wrote events meanwhile. */
const EVENT_SEQ_SEEN = (seen: number) =>
  seen === 0 ? '(attribute_not_exists(eventSeq) OR eventSeq = :seenSeq)' : 'eventSeq = :seenSeq';

/**
 * The customer's status returns to what it was before the registration's claim: UNREGISTERED, or
 * REVOKED for a re-activation. Needs `#status`, `#version`, `:unregistered`, `:at`, `:zero`, `:one`.
 */
const RETURN_TO_PRIOR_STATUS =
  '#status = if_not_exists(priorStatus, :unregistered), updatedAt = :at, #version = if_not_exists(#version, :zero) + :one';

/** The lease a registration's attempt holds on its customer. */
/**
 * Must-finish while the registration may still make a key: only its own next attempt takes it
 * over. An attempt that only owes the email (EMAIL_PENDING: the key was made and recorded) leaves
 * nothing half done in AWS, so should it die, the next operation on the customer may take over at
 * once instead of waiting for the registration's next resume.
 */
function registrationLease(attemptId: string, until: number, owesEmailOnly = false): Item {
  return leaseItem({
    owner: attemptId,
    operation: owesEmailOnly ? 'owed-email' : 'register',
    until,
    mustFinish: !owesEmailOnly,
  });
}

/**
 * Why the profile refused the claim, from the profile as it was: revoked (and no re-activation
 * asked for), reserved or registered by another registration, or free but leased to another
 * operation.
 */
function customerRefusal(registration: Registration, profile: Item): ClaimResult | undefined {
  const status = profile.status as CustomerStatus | undefined;
  if (status === 'REVOKED' && !registration.reactivate) return { kind: 'customer-revoked' };
  if (status !== 'UNREGISTERED' && status !== 'REVOKED') return { kind: 'customer-taken' };
  const holder = toLease(profile.lease);
  return holder ? { kind: 'customer-busy', holder } : undefined;
}
