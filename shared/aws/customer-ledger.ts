import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand, type TransactWriteCommandInput, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { randomUUID } from 'node:crypto';
import type { LifecycleEvent, RecordedEvent } from '../core/events';
import { type CustomerKey, DUE } from '../core/model';
import type {
  AcquireOutcome,
  AcquireRequest,
  CustomerChange,
  CustomerLedger,
  CustomerRecord,
  CustomerStatus,
  InterruptedLease,
  KeyItemWrite,
  Lease,
  LeaseIntent,
  TrackedKeyState,
} from '../core/customer-record';
import { LeaseLostError } from '../errors';
import { awsErrorName, cancellationReasons, conditionFailed, ifConditionHolds, translateDynamoError } from './aws-errors';
import { DynamoTable } from './dynamo-table';
import { type Item, placeKey, putNew, updateOf } from './item-requests';
import { queryPages } from './query-pages';
import { customerPk, DUE_INDEX, eventKey, keyItemKey, profileKey, regKey, shardKey } from './table-keys';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** What CustomerCommitTable says of a change only CustomerLedgerTable writes. */
const SAGA_COMMIT_ONLY = 'the registration saga’s commit writes its settled email, registration and events only; CustomerLedgerTable writes';

/**
 * Nobody holds the lease, or its holder's lease expired and leaves nothing to finish. Needs the
 * names `#lease`, `#until` and the values `:nowMs`, `:false`. (`until`, `owner`, `keys` and `status`
 * are DynamoDB reserved words: always through placeholders.)
 */
export const LEASE_FREE = '(attribute_not_exists(#lease) OR (#lease.#until < :nowMs AND #lease.mustFinish = :false))';

/**
 * The commit of an operation on a customer (its changes and the lease's release in one write),
 * apart from taking and keeping the lease: the registration saga holds its customer through the
 * registration's own claim and only commits here, so the functions that run the saga alone
 * bundle this part of the ledger only. Its commits write the profile, the registration and the
 * events; the key items and shard counts of the other operations' commits are CustomerLedgerTable's.
 */
export class CustomerCommitTable extends DynamoTable implements Pick<CustomerLedger, 'commit'> {
  async commit(customerId: string, owner: string, change: CustomerChange, now: Date, eventSeq = 0): Promise<void> {
    const at = now.toISOString();
    const events = change.events ?? [];
    const profile = this.#profileUpdate(customerId, owner, change, at, events.length > 0 ? eventSeq : undefined);
    const transactItems = [
      profile,
      ...this.keyItemWrites(customerId, change, at),
      ...(change.registration ? [this.#registrationUpdate(change.registration, at)] : []),
      ...this.placedKeysUpdates(change, at),
      ...outboxPuts(this.table, { customerId, correlationId: owner, after: eventSeq, at }, events),
    ];
    const lost = () => new LeaseLostError(`another operation took customer ${customerId} over`, 1);
    if (transactItems.length === 1) {
      // The profile alone (a billing event's time, a repair with nothing to write): one conditional
      // write, no transaction.
      if (!(await ifConditionHolds(this.client.send(new UpdateCommand(profile.Update))))) throw lost();
      return;
    }
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: transactItems }));
    } catch (error) {
      const reasons = cancellationReasons(error);
      // The profile (first) or, with an attempt id, the registration (last) moved on: another
      // operation, or another attempt of the registration, has it now. Nothing was written.
      const registrationAt = change.registration ? 1 + (change.items?.length ?? 0) : -1;
      if (conditionFailed(reasons, 0) || (registrationAt > 0 && conditionFailed(reasons, registrationAt))) throw lost();
      throw translateDynamoError(error);
    }
  }

  /** The profile's part of a commit: the change, one more version, and the lease released. */
  #profileUpdate(customerId: string, owner: string, change: CustomerChange, at: string, eventSeq: number | undefined) {
    // Key ids' placeholders; every other one spells its attribute (item-requests.ts).
    const names: Record<string, string> = {};
    const values: Item = { ':owner': owner, ':at': at };
    const sets = ['#version = if_not_exists(#version, :zero) + :one', 'updatedAt = :at'];
    // Leaving the lease leaves the sweep's partition too: nothing is left to finish.
    const removes = ['#lease', 'dueType', 'dueAt'];
    this.profileChanges(change, at, { sets, removes, values, names });
    // The events' numbers follow the count the holder read; the lease keeps anyone else from
    // writing events meanwhile, and the condition makes sure of it.
    let condition = '#lease.#owner = :owner';
    if (eventSeq !== undefined) {
      const events = change.events?.length ?? 0;
      values[':eventSeq'] = eventSeq + events;
      values[':seenSeq'] = eventSeq;
      sets.push('eventSeq = :eventSeq');
      condition += eventSeq === 0 ? ' AND (attribute_not_exists(eventSeq) OR eventSeq = :seenSeq)' : ' AND eventSeq = :seenSeq';
    }
    return {
      // Everything or nothing: a holder whose lease was taken over writes none of it.
      Update: updateOf(this.table, profileKey(customerId), `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`, condition, values, names),
    };
  }

  /**
   * The change's own clauses of the profile's update: here the saga's, the email it settled. The
   * other operations' (status, tier, shard, key list) are CustomerLedgerTable's.
   * @throws Error for a change of those, rather than commit without it
   */
  protected profileChanges(change: CustomerChange, _at: string, clauses: ProfileClauses): void {
    if (change.status || change.tier || change.tierEventAt || change.shard || change.keyShards || change.keys) {
      throw new Error(`${SAGA_COMMIT_ONLY} status, tier, shard and key list changes`);
    }
    emailedKeyClause(change, clauses);
  }

  /**
   * The key items' writes of a change: none here. The registration saga, the one user of this
   * commit alone, writes no key item and counts no key on a shard in a commit (its claim and its
   * record do); CustomerLedgerTable writes them.
   * @throws Error when the change has some, rather than commit without them
   */
  protected keyItemWrites(customerId: string, change: CustomerChange, _at: string): TransactItem[] {
    if (change.items?.length) throw new Error(`${SAGA_COMMIT_ONLY} key items (customer ${customerId})`);
    return [];
  }

  /** A shard's count of placed keys: none here (see keyItemWrites). */
  protected placedKeysUpdates(change: CustomerChange, _at: string): TransactItem[] {
    if (Object.keys(change.placedKeys ?? {}).length > 0) throw new Error(`${SAGA_COMMIT_ONLY} shards' placed keys`);
    return [];
  }

  #registrationUpdate(registration: NonNullable<CustomerChange['registration']>, at: string) {
    return {
      Update: updateOf(
        this.table,
        regKey(registration.registrationId),
        // Out of the resume sweep's partition, and kept: a registration that holds a key must
        // not expire (a replay would claim it afresh).
        'SET #state = :state, leaseExpiresAt = :zero, updatedAt = :at REMOVE dueType, dueAt, expiresAt',
        registration.attemptId ? 'attemptId = :attemptId' : 'attribute_exists(pk)',
        { ':state': registration.state, ':at': at, ...(registration.attemptId ? { ':attemptId': registration.attemptId } : {}) },
      ),
    };
  }
}

/**
 * The customer profile (`CUSTOMER#<id>` / `PROFILE`) as the serialization point of every operation
 * on the customer (DESIGN §7): the lease is a map on the item, taken with one conditional write and
 * released with the write that commits the operation's changes.
 */
export class CustomerLedgerTable extends CustomerCommitTable implements CustomerLedger {
  protected override profileChanges(change: CustomerChange, at: string, clauses: ProfileClauses): void {
    const { sets, removes, values, names } = clauses;
    if (change.status) {
      values[':status'] = change.status;
      sets.push('#status = :status');
      if (change.status === 'REVOKED') sets.push('revokedAt = :at');
    }
    if (change.tier) {
      values[':tier'] = change.tier.to;
      values[':noHistory'] = [];
      // `requestId` as earlier versions wrote it: the HTTP request id or the billing event id.
      values[':tierChange'] = [{ from: change.tier.from, to: change.tier.to, requestId: change.tier.cause, at }];
      sets.push('tier = :tier', 'tierHistory = list_append(if_not_exists(tierHistory, :noHistory), :tierChange)');
    }
    if (change.tierEventAt) {
      values[':tierEventAt'] = change.tierEventAt;
      sets.push('tierEventAt = :tierEventAt');
    }
    emailedKeyClause(change, clauses);
    if (change.shard) {
      // SHARD is a DynamoDB reserved word.
      values[':shard'] = change.shard;
      sets.push('#shard = :shard');
    }
    if (change.keyShards && Object.keys(change.keyShards).length > 0) {
      values[':keyShards'] = change.keyShards;
      sets.push('keyShards = :keyShards');
    } else if (change.keyShards) {
      removes.push('keyShards');
    }
    // Key ids are the map's keys: each through a placeholder of its own, as ids may hold any
    // character. A record holds each id once, so no id is both set and removed (two overlapping
    // paths in one expression are refused).
    const entries = Object.entries(change.keys ?? {}).filter(([, state]) => state !== undefined);
    entries.forEach(([keyId, state], index) => {
      names[`#k${index}`] = keyId;
      if (state === null) {
        removes.push(`#keys.#k${index}`);
      } else {
        values[`:k${index}`] = state;
        sets.push(`#keys.#k${index} = :k${index}`);
      }
    });
  }

  protected override keyItemWrites(customerId: string, change: CustomerChange, at: string): TransactItem[] {
    return (change.items ?? []).map((write) => this.#keyItemWrite(customerId, write, at));
  }

  protected override placedKeysUpdates(change: CustomerChange, at: string): TransactItem[] {
    return Object.entries(change.placedKeys ?? {}).map(([shardId, delta]) => this.#placedKeysUpdate(shardId, delta, at));
  }

  #keyItemWrite(customerId: string, write: KeyItemWrite, at: string) {
    if (write.kind === 'put') {
      const { key, due, replaces } = write;
      if (key.customerId !== customerId) {
        throw new Error(`key ${key.keyId} belongs to customer ${key.customerId}, not ${customerId}`);
      }
      return {
        Put: {
          TableName: this.table,
          Item: withoutUndefined({
            ...keyItemKey(customerId, key.keyId),
            ...keyItemAttributes(key),
            predecessorKeyId: replaces,
            dueType: due?.type,
            dueAt: due?.at,
          }),
        },
      };
    }
    const values: Item = { ':at': at };
    const sets = ['updatedAt = :at'];
    // The per-key rotation claim and repair mark of earlier versions: the lease replaced both.
    const removes = ['rotation', 'needsRepair'];
    for (const [field, value] of Object.entries(write.set ?? {})) {
      if (value === undefined) continue;
      values[`:${field}`] = value;
      sets.push(`#${field} = :${field}`);
    }
    if (write.due) {
      values[':dueType'] = write.due.type;
      values[':dueAt'] = write.due.at;
      sets.push('dueType = :dueType', 'dueAt = :dueAt');
    } else if (write.due === null) {
      // Leaving the due index is removing its attributes: the index is sparse.
      removes.push('dueType', 'dueAt');
    }
    return {
      // An update never creates a key item: a missing one is a bug, not a key.
      Update: updateOf(this.table, keyItemKey(customerId, write.keyId), `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`, 'attribute_exists(pk)', values),
    };
  }

  /** A shard's count of placed keys, which placement checks against its high-water mark. */
  #placedKeysUpdate(shardId: string, delta: number, at: string) {
    return { Update: updateOf(this.table, shardKey(shardId), 'SET updatedAt = :at ADD placedKeys :delta', undefined, { ':delta': delta, ':at': at }) };
  }

  async acquire(customerId: string, request: AcquireRequest, now: Date): Promise<AcquireOutcome> {
    const nowMs = now.getTime();
    const at = now.toISOString();
    const lease: Lease = { ...request.intent, owner: request.owner, until: request.until, mustFinish: request.mustFinish };
    // Key ids' placeholders; every other one spells its attribute (item-requests.ts).
    const names: Record<string, string> = {};
    const values: Item = { ':lease': leaseItem(lease), ':at': at, ':noKeys': {}, ':nowMs': nowMs };
    // The key list exists from here on, so a commit can set one of its entries (a document path
    // into a missing map is refused), even on a profile written before the list existed.
    const sets = [
      '#lease = :lease',
      '#version = if_not_exists(#version, :zero) + :one',
      'updatedAt = :at',
      '#keys = if_not_exists(#keys, :noKeys)',
    ];
    if (request.setStatus) {
      values[':setStatus'] = request.setStatus;
      sets.push('#status = :setStatus');
    }
    if (request.mustFinish) {
      // Should the holder die, the sweep finds the customer here once the lease has expired.
      values[':repair'] = DUE.repair;
      values[':dueAt'] = new Date(request.until).toISOString();
      sets.push('dueType = :repair', 'dueAt = :dueAt');
    }
    const listed = request.takeOverInterrupted;
    let leaseFree = LEASE_FREE;
    if (listed?.owner !== undefined) {
      values[':listed'] = listed.owner;
      // The same holder may have counted its key on a shard since it was listed (place): the
      // lease written here must carry that count on, so it must be the one it names.
      let placed = 'attribute_not_exists(#lease.#placed)';
      if (request.intent.placed !== undefined) {
        values[':placed'] = request.intent.placed;
        placed = '#lease.#placed = :placed';
      }
      leaseFree = `(#lease.#owner = :listed AND #lease.#until < :nowMs AND ${placed})`;
    } else if (listed) leaseFree = 'attribute_not_exists(#lease)';
    const conditions = ['attribute_exists(pk)', leaseFree];
    if (request.status) {
      conditions.push(`#status IN (${placeholders(values, ':status', request.status)})`);
    }
    if (request.key) {
      names['#k'] = request.key.keyId;
      conditions.push(`#keys.#k IN (${placeholders(values, ':keyState', request.key.states)})`);
    }
    try {
      const result = await this.client.send(
        new UpdateCommand({
          ...updateOf(this.table, profileKey(customerId), `SET ${sets.join(', ')}`, conditions.join(' AND '), values, names),
          // The record comes back with the lease (one call): as it was, plus what was just written.
          ReturnValues: 'ALL_OLD',
          // A refusal says why: no customer, who holds it, or the state it is in.
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const before = result.Attributes ?? {};
      const customer = toCustomerRecord({
        ...before,
        keys: before.keys ?? {},
        status: request.setStatus ?? before.status,
        version: Number(before.version ?? 0) + 1,
        lease: leaseItem(lease),
      });
      const previous = toLease(before.lease);
      const interrupted = previous?.mustFinish && previous.until < nowMs ? previous : undefined;
      return interrupted ? { kind: 'acquired', customer, interrupted } : { kind: 'acquired', customer };
    } catch (error) {
      if (awsErrorName(error) !== 'ConditionalCheckFailedException') throw translateDynamoError(error);
      const seen = (error as { Item?: Record<string, AttributeValue> }).Item;
      if (!seen) return { kind: 'not-found' };
      const item = unmarshall(seen);
      const holder = toLease(item.lease);
      if (holder && (holder.until >= nowMs || (holder.mustFinish && !request.takeOverInterrupted))) {
        return { kind: 'busy', holder };
      }
      return { kind: 'refused', customer: toCustomerRecord(item) };
    }
  }

  async renew(customerId: string, owner: string, until: number, _now: Date): Promise<boolean> {
    // dueAt follows the lease: the sweep must not take up a holder that is still working. (On
    // a lease that need not be finished there is no dueType, so the item stays out of the index.)
    const result = await this.#ifHolder(customerId, owner, 'SET #lease.#until = :until, dueAt = :dueAt', {
      ':until': until,
      ':dueAt': new Date(until).toISOString(),
    });
    return result !== undefined;
  }

  async release(customerId: string, owner: string, placed?: string): Promise<void> {
    // A lease taken over since is the new holder's to release (and its count the new holder's).
    if (!placed) {
      await this.#ifHolder(customerId, owner, 'REMOVE #lease, dueType, dueAt');
      return;
    }
    await this.#ifLeaseHolds(customerId, owner, 'REMOVE #lease, dueType, dueAt', {}, {
      Update: updateOf(this.table, shardKey(placed), 'SET updatedAt = :at ADD placedKeys :minusOne', undefined, {
        ':minusOne': -1,
        ':at': new Date().toISOString(),
      }),
    });
  }

  async place(
    customerId: string,
    owner: string,
    placement: { shardId: string; highWaterKeys: number },
    now: Date,
  ): Promise<'placed' | 'shard-full' | 'lost'> {
    const at = now.toISOString();
    const outcome = await this.#ifLeaseHolds(
      customerId,
      owner,
      'SET #lease.#placed = :placed, updatedAt = :at',
      { ':placed': placement.shardId, ':at': at },
      placeKey(this.table, shardKey(placement.shardId), placement.highWaterKeys, at),
    );
    return outcome === 'shard' ? 'shard-full' : outcome === 'lease' ? 'lost' : 'placed';
  }

  /**
   * `update` of the profile if `owner` holds its lease, and the shard item's `shard` write, at once;
   * which of the two conditions failed, if one did.
   */
  async #ifLeaseHolds(customerId: string, owner: string, update: string, values: Item, shard: TransactItem): Promise<'lease' | 'shard' | undefined> {
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { Update: updateOf(this.table, profileKey(customerId), update, '#lease.#owner = :owner', { ...values, ':owner': owner }) },
            shard,
          ],
        }),
      );
      return undefined;
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (conditionFailed(reasons, 0)) return 'lease';
      if (conditionFailed(reasons, 1)) return 'shard';
      throw translateDynamoError(error);
    }
  }

  async abandon(customerId: string, owner: string, now: Date): Promise<void> {
    // Must-finish from now on, whatever it was taken as: only the sweep may take it, and it
    // learns what to finish from the lease's intent.
    await this.#ifHolder(customerId, owner, 'SET #lease.#until = :nowMs, #lease.mustFinish = :true, dueType = :repair, dueAt = :at', {
      ':nowMs': now.getTime(),
      ':repair': DUE.repair,
      ':at': now.toISOString(),
    });
  }

  /** `update` of the profile, if `owner` still holds its lease; undefined when it does not. */
  #ifHolder(customerId: string, owner: string, update: string, values?: Item) {
    return ifConditionHolds(
      this.client.send(
        new UpdateCommand(updateOf(this.table, profileKey(customerId), update, '#lease.#owner = :owner', { ...values, ':owner': owner })),
      ),
    );
  }

  async findInterrupted(now: Date, limit: number): Promise<InterruptedLease[]> {
    const interrupted: InterruptedLease[] = [];
    await queryPages(
      this.client,
      {
        TableName: this.table,
        IndexName: DUE_INDEX,
        KeyConditionExpression: 'dueType = :repair AND dueAt <= :now',
        ExpressionAttributeValues: { ':repair': DUE.repair, ':now': now.toISOString() },
        Limit: limit,
      },
      (page) => {
        for (const item of page.Items ?? []) {
          const lease = toLease(item.lease);
          interrupted.push({ customerId: toCustomerRecord(item).customerId, owner: lease?.owner, intent: intentOf(lease) });
        }
        return interrupted.length < limit;
      },
    );
    return interrupted.slice(0, limit);
  }
}

/** The customer record from a profile item (a reserved, not yet registered customer has no email or tier). */
export function toCustomerRecord(item: Item): CustomerRecord {
  const record: CustomerRecord = {
    customerId: optionalString(item.customerId) ?? String(item.pk).slice(customerPk('').length),
    email: optionalString(item.email) ?? '',
    tier: optionalString(item.tier) ?? '',
    status: String(item.status ?? 'UNREGISTERED') as CustomerStatus,
    registrationId: optionalString(item.registrationId) ?? '',
    keys: toKeyList(item.keys),
    version: Number(item.version ?? 0),
    eventSeq: Number(item.eventSeq ?? 0),
  };
  const shard = optionalString(item.shard);
  if (shard) record.shard = shard;
  if (typeof item.keyShards === 'object' && item.keyShards !== null) {
    record.keyShards = Object.fromEntries(
      Object.entries(item.keyShards as Item).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
  }
  const emailedKeyId = optionalString(item.emailedKeyId);
  if (emailedKeyId) record.emailedKeyId = emailedKeyId;
  const tierEventAt = optionalString(item.tierEventAt);
  if (tierEventAt) record.tierEventAt = tierEventAt;
  const lease = toLease(item.lease);
  if (lease) record.lease = lease;
  return record;
}

/** The lease map of a profile item; undefined when there is none. */
export function toLease(value: unknown): Lease | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const map = value as Item;
  const lease: Lease = {
    owner: String(map.owner),
    operation: String(map.operation) as Lease['operation'],
    until: Number(map.until ?? 0),
    // As the conditions read it: only an explicit false lets another operation take it over.
    mustFinish: map.mustFinish !== false,
  };
  for (const [field, type] of LEASE_INTENT) {
    if (typeof map[field] === type) Object.assign(lease, { [field]: map[field] });
  }
  return lease;
}

/** The lease's intent fields beyond its operation, and the type each is stored as. */
const LEASE_INTENT = [
  ['keyId', 'string'],
  ['graceDays', 'number'],
  ['tier', 'string'],
  ['toShard', 'string'],
  ['placed', 'string'],
] as const;

/** The lease as the profile stores it: absent intent fields are left out, not written as null. */
export function leaseItem(lease: Lease): Item {
  const fields = ['owner', 'operation', 'until', 'mustFinish', ...LEASE_INTENT.map(([field]) => field)] as const;
  return withoutUndefined(Object.fromEntries(fields.map((field) => [field, lease[field]])));
}

/** What the lease's holder was doing, without who and until when. */
function intentOf(lease: Lease | undefined): LeaseIntent | undefined {
  if (!lease) return undefined;
  const { owner: _owner, until: _until, mustFinish: _mustFinish, ...intent } = lease;
  return intent;
}

/** The profile's update clauses a change adds to (CustomerCommitTable.profileChanges). */
interface ProfileClauses {
  sets: string[];
  removes: string[];
  values: Item;
  /** Key ids' placeholders; every other one spells its attribute (item-requests.ts). */
  names: Record<string, string>;
}

/** The key whose email went out, once it did: an owed email is recorded by the commit that settles it. */
function emailedKeyClause(change: CustomerChange, { sets, values }: ProfileClauses): void {
  if (change.emailedKeyId) {
    values[':emailedKeyId'] = change.emailedKeyId;
    sets.push('emailedKeyId = :emailedKeyId');
  }
}

/** Seconds until the holder's lease expires: at least 1, as a Retry-After. */
export const retryAfterSeconds = (holder: Lease | undefined, now: Date) =>
  Math.max(1, Math.ceil(((holder?.until ?? 0) - now.getTime()) / 1000));

/** The key item's own attributes (its table key apart). */
function keyItemAttributes(key: CustomerKey): Item {
  return {
    customerId: key.customerId,
    keyId: key.keyId,
    state: key.state,
    usagePlanId: key.usagePlanId,
    tier: key.tier,
    shard: key.shard,
    fingerprint: key.fingerprint,
    registrationId: key.registrationId,
    generation: key.generation,
    createdAt: key.createdAt,
    rotateAt: key.rotateAt,
    retireAt: key.retireAt,
    successorKeyId: key.successorKeyId,
  };
}

const TRACKED: ReadonlySet<string> = new Set<TrackedKeyState>(['ACTIVE', 'RETIRING', 'DISABLED']);

function toKeyList(value: unknown): Record<string, TrackedKeyState> {
  const keys: Record<string, TrackedKeyState> = {};
  if (typeof value !== 'object' || value === null) return keys;
  for (const [keyId, state] of Object.entries(value as Item)) {
    if (typeof state === 'string' && TRACKED.has(state)) keys[keyId] = state as TrackedKeyState;
  }
  return keys;
}

/** Adds `:prefix0`, `:prefix1`, ... to `values`; returns them for an IN list. */
function placeholders(values: Item, prefix: string, list: readonly string[]): string {
  if (list.length === 0) throw new Error(`${prefix.slice(1)}: an IN list needs at least one value`);
  return list
    .map((value, index) => {
      values[`${prefix}${index}`] = value;
      return `${prefix}${index}`;
    })
    .join(', ');
}

function withoutUndefined(item: Item): Item {
  return Object.fromEntries(Object.entries(item).filter(([, value]) => value !== undefined));
}

const optionalString = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** How long an event stays in the audit trail (its TTL), unless the deploy says otherwise. */
export const EVENT_RETENTION_DAYS = 400;

/**
 * The outbox items of one change: each event as the customer's `EVENT#<sequence>` item, numbered
 * after `after`, new (a number is never written twice), and kept for the audit trail until its TTL.
 */
export function outboxPuts(
  table: string,
  context: { customerId: string; correlationId: string; after: number; at: string; retentionDays?: number | undefined },
  events: readonly LifecycleEvent[],
) {
  const expiresAt = Math.floor(Date.parse(context.at) / 1000) + (context.retentionDays ?? EVENT_RETENTION_DAYS) * 86_400;
  return events.map((lifecycle, index) => {
    const recorded: RecordedEvent = {
      ...lifecycle,
      eventId: randomUUID(),
      customerId: context.customerId,
      sequence: context.after + index + 1,
      time: context.at,
      correlationId: context.correlationId,
    };
    return putNew(table, {
      ...eventKey(context.customerId, recorded.sequence),
      ...withoutUndefined({ ...recorded, detail: withoutUndefined({ ...recorded.detail }) }),
      expiresAt,
    });
  });
}
