import type { LifecycleEvent } from '../../shared/core/events';
import { createHash } from 'node:crypto';
import { ApiKeySecret } from '../../shared/api-key-secret';
import { DUE, type CustomerKey, type DueType, KEY_DUE_TYPES } from '../../shared/core/model';
import type {
  AcquireOutcome,
  AcquireRequest,
  CustomerChange,
  CustomerLedger,
  CustomerRecord,
  CustomerStatus,
  Due,
  InterruptedLease,
  Lease,
  LeaseIntent,
  TrackedKeyState,
} from '../../shared/core/customer-record';
import { AssociationRejectedError, CustomerBusyError, LeaseLostError, RegistrationInProgressError, UsageUnavailableError } from '../../shared/errors';
import type {
  ClaimResult,
  IssuedKey,
  KeyGateway,
  Mailer,
  NewKeySpec,
  OutgoingEmail,
  Placement,
  PlanLimits,
  RecordFailureInput,
  RecordKeyInput,
  RegistrationStore,
  KeyStore,
} from '../../shared/core/ports';
import type { ProvisioningMessage, RegistrationQueue, StalledRegistrations } from '../../shared/provisioning/ports';
import type { Customer, Registration } from '../../shared/core/registration';
import type { KeyInventory, KeyRecord, KeyRecords, ListedKey } from '../../shared/reconcile/ports';
import type { Shard, ShardState } from '../../shared/core/shards';
import type { ShardRecord, ShardRegistry } from '../../shared/shards/ports';

/*
 * In-memory fakes of every port keyplan's use cases speak, over one shared world: API Gateway
 * (keys, usage plans), the table (registrations, customer records, key items and the sparse due
 * index), SES and the queue. Each port method changes the world synchronously, so one call is one
 * atomic step, as a conditional write or a single API call is; the concurrency model puts its
 * interleaving points between calls (in-memory-scheduling.ts).
 *
 * The fakes follow the ports' TSDoc and the DynamoDB and API Gateway adapters' conditions, and
 * nothing more lenient: a fake that forgave what AWS refuses would hide the bugs the model hunts.
 */

/** An AWS error the adapters pass on untranslated (`name` as the SDK sets it). */
export class FakeAwsError extends Error {
  constructor(
    override readonly name: 'NotFoundException' | 'BadRequestException' | 'TransactionCanceledException',
    message: string,
  ) {
    super(message);
  }
}

export interface ApiKeyState {
  id: string;
  name: string;
  value: string;
  enabled: boolean;
  tags: Record<string, string>;
  customerId: string;
  description: string;
  createdAt: Date;
}

export interface SentEmail extends OutgoingEmail {
  at: Date;
  /** The key values the email carries (its text searched for every value API Gateway ever made). */
  keyValues: string[];
}

/** The profile item: the customer record plus what only the table keeps. */
export interface ProfileItem extends CustomerRecord {
  /** The status before the pending registration's claim: where a failure returns the customer. */
  priorStatus: CustomerStatus;
  tierHistory: { from: string; to: string; cause: string; at: string }[];
  /** The REPAIR entry of the due index (epoch ms): set while a must-finish lease of `acquire` is held. */
  repairDueAt?: number | undefined;
  createdAt: string;
  updatedAt: string;
}

export interface KeyItem extends KeyRecord {
  due?: Due | undefined;
  replaces?: string | undefined;
  updatedAt?: string | undefined;
}

export interface RegistrationItem extends Registration {
  /** The RESUME entry of the due index. */
  resumeAt?: string | undefined;
  failureDetail?: string | undefined;
}

export interface WorldSettings {
  /** Usage plans of this stage, by tier. */
  tierMap: Readonly<Record<string, string>>;
  /** The sweep takes a registration up this long after its claim or attempt, doubling per attempt. */
  resumeAfterSeconds: number;
  /** Plans of other stages (a key may be in one plan per stage). */
  foreignPlans?: readonly string[] | undefined;
  /**
   * Several shards (accounts and Regions), each an API Gateway of its own with its shard's plans
   * (`tierMap` is then the home shard's); `gateway.in(id)` is that shard's. None: one shard, and
   * `gateway.in()` is the gateway itself, as before.
   */
  shards?: readonly Shard[] | undefined;
}

/** One claim's placement, as the shard's item stood when the claim wrote (for the invariants). */
export interface PlacementRecord {
  registrationId: string;
  customerId: string;
  shardId: string;
  /** The shard's placed keys and last inventory before the claim, its registry state then. */
  placedBefore: number;
  inventoryBefore: number | undefined;
  stateBefore: ShardState | undefined;
  /** Whether the claim carried a placement (and so was checked against the mark) at all. */
  checked: boolean;
}

const MAX_RESUME_DOUBLINGS = 6;
const clone = <T>(value: T): T => structuredClone(value);
const PLAN_LIMITS: PlanLimits = { rateLimit: 10, burstLimit: 20, quotaLimit: 1000, quotaPeriod: 'DAY' };

/**
 * The whole world the model runs in. Its clock is the fake's only time source: the use cases must
 * read it through `deps.clock`, never `Date.now()`.
 */
export class InMemoryWorld {
  readonly settings: WorldSettings;
  #now: number;

  // API Gateway
  readonly apiKeys = new Map<string, ApiKeyState>();
  /** usage plan id -> key ids */
  readonly plans = new Map<string, Set<string>>();
  /** usage plan id -> stage */
  readonly planStage = new Map<string, string>();
  /** Every value API Gateway ever made, deleted keys' too: value -> key id. */
  readonly keyValues = new Map<string, string>();
  /** Key ids some call changed or read the value of (the foreign keys must never be in it). */
  readonly touchedKeys = new Set<string>();
  /** Sharded worlds: key id -> the shard whose API Gateway holds it; plan id -> its shard. */
  readonly keyShard = new Map<string, string>();
  readonly planShard = new Map<string, string>();
  #keySequence = 0;

  // The shard items of the table: counts, state, inventory; and every claim's placement.
  readonly shardRecords = new Map<string, ShardRecord>();
  readonly placements: PlacementRecord[] = [];
  /** Every commit that moved a customer to another shard (a drain's rotation), as the target stood. */
  readonly moves: { customerId: string; shardId: string; placedBefore: number; inventoryBefore: number | undefined }[] = [];

  // DynamoDB
  readonly registrations = new Map<string, RegistrationItem>();
  readonly profiles = new Map<string, ProfileItem>();
  /** Each customer's lifecycle events as written (the outbox), in write order. */
  readonly events = new Map<string, { sequence: number; type: string; correlationId: string; keyId?: string | undefined }[]>();
  readonly keyItems = new Map<string, Map<string, KeyItem>>();

  // SES and SQS
  readonly emails: SentEmail[] = [];
  readonly queued: ProvisioningMessage[] = [];

  /** One line per call that changed something, for reading a counterexample. */
  readonly trace: string[] = [];

  readonly gateway: FakeApiGateway;
  readonly ledger: InMemoryLedger;
  readonly registrationTable: InMemoryRegistrationTable;
  readonly keyTable: InMemoryKeyTable;
  readonly mailer: FakeMailer;
  readonly queue: FakeQueue;
  readonly registry: InMemoryShardRegistry;
  /** Sharded worlds: each shard's API Gateway (all of them views of this world). */
  readonly shardGateways = new Map<string, FakeApiGateway>();
  /** The fake clock, for `deps.clock`. */
  readonly clock = (): Date => new Date(this.#now);

  constructor(settings: WorldSettings, start: Date) {
    this.settings = settings;
    this.#now = start.getTime();
    if (settings.shards) {
      // One stage per shard: a key may be in one plan of its shard's stage.
      for (const shard of settings.shards) {
        for (const planId of new Set(Object.values(shard.plans))) {
          this.#addPlan(planId, `this:${shard.id}`);
          this.planShard.set(planId, shard.id);
        }
        this.shardGateways.set(shard.id, new FakeApiGateway(this, 3, shard.id));
      }
    } else {
      for (const planId of Object.values(settings.tierMap)) this.#addPlan(planId, 'this');
    }
    for (const planId of settings.foreignPlans ?? []) this.#addPlan(planId, `other:${planId}`);
    this.gateway = new FakeApiGateway(this);
    this.ledger = new InMemoryLedger(this);
    this.registrationTable = new InMemoryRegistrationTable(this);
    this.keyTable = new InMemoryKeyTable(this);
    this.mailer = new FakeMailer(this);
    this.queue = new FakeQueue(this);
    this.registry = new InMemoryShardRegistry(this);
  }

  /** The home shard's id in a sharded world (the first of the list); undefined in a world of one. */
  get homeShard(): string | undefined {
    return this.settings.shards?.[0]?.id;
  }

  /** The shard whose API Gateway holds the key (sharded worlds; undefined: deleted, or one shard). */
  shardOfKey(keyId: string): string | undefined {
    return this.apiKeys.has(keyId) ? this.keyShard.get(keyId) : undefined;
  }

  /** A shard's item, created empty as an ADD on a missing item does. */
  shardRecord(shardId: string): ShardRecord {
    let record = this.shardRecords.get(shardId);
    if (!record) {
      record = { shardId, placedKeys: 0 };
      this.shardRecords.set(shardId, record);
    }
    return record;
  }

  /** ADD placedKeys :delta on the shard's item. */
  countPlaced(shardId: string, delta: number): void {
    const record = this.shardRecord(shardId);
    record.placedKeys += delta;
    this.note(`shard ${shardId} placedKeys ${delta > 0 ? '+' : ''}${delta} -> ${record.placedKeys}`);
  }

  #addPlan(planId: string, stage: string) {
    this.plans.set(planId, new Set());
    this.planStage.set(planId, stage);
  }

  get now(): number {
    return this.#now;
  }

  advance(ms: number): void {
    this.#now += ms;
    this.note(`clock +${ms / 1000}s -> ${new Date(this.#now).toISOString()}`);
  }

  note(line: string): void {
    this.trace.push(line);
  }

  /** A key value: >= 20 characters, all of one length (none is a substring of another), deterministic. */
  nextKey(): { id: string; value: string } {
    const n = ++this.#keySequence;
    const id = `key${String(n).padStart(4, '0')}`;
    const value = `V${String(n).padStart(5, '0')}${createHash('sha256').update(id).digest('hex').slice(0, 26)}`;
    return { id, value };
  }

  /** A key made outside keyplan's use cases (another stage, another tool), optionally in a plan. */
  seedApiKey(spec: { name: string; tags: Record<string, string>; customerId?: string; usagePlanId?: string; shard?: string }): ApiKeyState {
    const { id, value } = this.nextKey();
    const key: ApiKeyState = {
      id,
      name: spec.name,
      value,
      enabled: true,
      tags: { ...spec.tags },
      customerId: spec.customerId ?? '',
      description: 'seeded',
      createdAt: new Date(this.#now),
    };
    this.apiKeys.set(id, key);
    this.keyValues.set(value, id);
    const shard = spec.shard ?? this.homeShard;
    if (shard !== undefined) this.keyShard.set(id, shard);
    if (spec.usagePlanId) this.plans.get(spec.usagePlanId)?.add(id);
    return key;
  }

  plansOf(keyId: string): string[] {
    return [...this.plans].filter(([, keys]) => keys.has(keyId)).map(([planId]) => planId);
  }

  itemsOf(customerId: string): Map<string, KeyItem> {
    let items = this.keyItems.get(customerId);
    if (!items) {
      items = new Map();
      this.keyItems.set(customerId, items);
    }
    return items;
  }

  allKeyItems(): KeyItem[] {
    return [...this.keyItems.values()].flatMap((items) => [...items.values()]);
  }

  resumeAt(now: Date, attempts: number): string {
    const delay = this.settings.resumeAfterSeconds * 1000 * 2 ** Math.min(attempts, MAX_RESUME_DOUBLINGS);
    return new Date(now.getTime() + delay).toISOString();
  }

  /** The record as the ledger hands it out: a copy, without what only the table keeps. */
  recordOf(profile: ProfileItem): CustomerRecord {
    const { customerId, email, tier, status, registrationId, keys, emailedKeyId, tierEventAt, version, lease, eventSeq } = profile;
    const record: CustomerRecord = clone({ customerId, email, tier, status, registrationId, keys, emailedKeyId, tierEventAt, version, lease, eventSeq });
    // Only where a shard was written, as the adapter reads them (a record of one shard has none).
    if (profile.shard !== undefined) record.shard = profile.shard;
    if (profile.keyShards !== undefined) record.keyShards = clone(profile.keyShards);
    return record;
  }

  /**
   * The outbox part of a write: the events numbered after `seen`, which must still be the
   * customer's count (the table's condition); `stale` is what a failed condition throws.
   */
  appendEvents(
    profile: ProfileItem,
    events: readonly LifecycleEvent[] | undefined,
    context: { correlationId: string; seen: number | undefined; stale: () => Error },
  ): void {
    if (!events || events.length === 0) return;
    const count = profile.eventSeq ?? 0;
    if (context.seen !== undefined && context.seen !== count) throw context.stale();
    const list = this.events.get(profile.customerId) ?? [];
    events.forEach((lifecycle, index) => {
      const keyId = lifecycle.detail.keyId ?? lifecycle.detail.newKeyId;
      list.push({
        sequence: count + index + 1,
        type: lifecycle.type,
        correlationId: context.correlationId,
        keyId: typeof keyId === 'string' ? keyId : undefined,
      });
    });
    this.events.set(profile.customerId, list);
    profile.eventSeq = count + events.length;
  }
}

const isExpired = (lease: Lease, now: Date) => lease.until < now.getTime();

/** API Gateway: keys, usage plans, one plan per key and stage. */
export class FakeApiGateway implements KeyGateway, KeyInventory {
  constructor(
    private readonly world: InMemoryWorld,
    /** Keys per GetApiKeys page: small, so a listing spans pages and other calls can land between them. */
    private readonly pageSize = 3,
    /**
     * A sharded world's view of one shard's API Gateway: it sees only that account's keys and
     * plans; a key or plan of another shard is unknown here (NotFoundException, which the adapter
     * takes as "already deleted" or "not in the plan" where the port says so).
     */
    readonly shardId?: string | undefined,
  ) {}

  /** One shard: every shard's keys are this gateway's. Several: the shard's own gateway. */
  in(shardId?: string): FakeApiGateway {
    const w = this.world;
    if (!w.settings.shards) return this;
    const id = shardId ?? w.homeShard ?? '';
    const gateway = w.shardGateways.get(id);
    if (!gateway) throw new Error(`the fake has no shard ${id}`);
    return gateway;
  }

  /** The gateway that answers this call: itself, or in a sharded world the home shard's. */
  #scoped(): FakeApiGateway {
    return this.shardId === undefined && this.world.settings.shards ? this.in() : this;
  }

  /** Whether this gateway's account holds the key (every key, in a world of one shard). */
  #holds(keyId: string): boolean {
    return this.world.apiKeys.has(keyId) && (this.shardId === undefined || this.world.keyShard.get(keyId) === this.shardId);
  }

  #hasPlan(usagePlanId: string): boolean {
    const w = this.world;
    if (!w.plans.has(usagePlanId)) return false;
    // Other stages' plans live in every account of the fake (another stage shares each).
    return this.shardId === undefined || !w.planShard.has(usagePlanId) || w.planShard.get(usagePlanId) === this.shardId;
  }

  async ensureKey(spec: NewKeySpec, options: { lookupFirst: boolean }): Promise<IssuedKey> {
    const scoped = this.#scoped();
    if (scoped !== this) return scoped.ensureKey(spec, options);
    const w = this.world;
    if (options.lookupFirst) {
      // nameQuery is a prefix match; the adapter then insists on the exact name.
      // ... and on the stage: another stage's key of the same name is never adopted (a key from
      // before the stage tag has none and counts as ours).
      const stage = spec.tags['keyplan:stage'];
      const existing = [...w.apiKeys.values()].find(
        (key) =>
          this.#holds(key.id) &&
          key.name === spec.name &&
          (key.tags['keyplan:stage'] === undefined || key.tags['keyplan:stage'] === stage),
      );
      if (existing) {
        w.note(`GetApiKeys nameQuery=${spec.name} found ${existing.id}`);
        return { id: existing.id, secret: new ApiKeySecret(existing.value), found: true };
      }
    }
    // API Gateway does not refuse a second key of the same name.
    const { id, value } = w.nextKey();
    w.apiKeys.set(id, {
      id,
      name: spec.name,
      value,
      enabled: true,
      tags: { ...spec.tags },
      customerId: spec.customerId,
      description: spec.description,
      createdAt: new Date(w.now),
    });
    w.keyValues.set(value, id);
    if (this.shardId !== undefined) w.keyShard.set(id, this.shardId);
    w.note(`CreateApiKey ${id} ${spec.name} customer=${spec.customerId}${this.shardId === undefined ? '' : ` shard=${this.shardId}`}`);
    return { id, secret: new ApiKeySecret(value) };
  }

  async getKeyValue(keyId: string): Promise<ApiKeySecret> {
    const scoped = this.#scoped();
    if (scoped !== this) return scoped.getKeyValue(keyId);
    this.world.touchedKeys.add(keyId);
    const key = this.#holds(keyId) ? this.world.apiKeys.get(keyId) : undefined;
    if (!key) throw new FakeAwsError('NotFoundException', `Invalid API Key identifier specified (${keyId})`);
    return new ApiKeySecret(key.value);
  }

  async addKeyToPlan(usagePlanId: string, keyId: string): Promise<void> {
    const scoped = this.#scoped();
    if (scoped !== this) return scoped.addKeyToPlan(usagePlanId, keyId);
    const w = this.world;
    w.touchedKeys.add(keyId);
    const plan = this.#hasPlan(usagePlanId) ? w.plans.get(usagePlanId) : undefined;
    if (!plan || !this.#holds(keyId)) throw new AssociationRejectedError(`API Gateway rejected the association (NotFoundException)`);
    if (plan.has(keyId)) return;
    const stage = w.planStage.get(usagePlanId);
    if (w.plansOf(keyId).some((other) => w.planStage.get(other) === stage)) {
      throw new AssociationRejectedError('the key is already in another usage plan of the same stage');
    }
    plan.add(keyId);
    w.note(`CreateUsagePlanKey ${usagePlanId} ${keyId}`);
  }

  async deleteKey(keyId: string): Promise<void> {
    const scoped = this.#scoped();
    if (scoped !== this) return scoped.deleteKey(keyId);
    const w = this.world;
    w.touchedKeys.add(keyId);
    // Another shard's key is unknown here: NotFoundException, which the adapter takes as deleted.
    if (!this.#holds(keyId) || !w.apiKeys.delete(keyId)) return;
    for (const keys of w.plans.values()) keys.delete(keyId);
    w.note(`DeleteApiKey ${keyId}`);
  }

  async removeKeyFromPlan(usagePlanId: string, keyId: string): Promise<void> {
    const scoped = this.#scoped();
    if (scoped !== this) return scoped.removeKeyFromPlan(usagePlanId, keyId);
    const w = this.world;
    w.touchedKeys.add(keyId);
    if (!this.#hasPlan(usagePlanId) || !this.#holds(keyId)) return;
    if (w.plans.get(usagePlanId)?.delete(keyId)) w.note(`DeleteUsagePlanKey ${usagePlanId} ${keyId}`);
  }

  async disableKey(keyId: string): Promise<void> {
    const scoped = this.#scoped();
    if (scoped !== this) return scoped.disableKey(keyId);
    const w = this.world;
    w.touchedKeys.add(keyId);
    const key = this.#holds(keyId) ? w.apiKeys.get(keyId) : undefined;
    if (!key || !key.enabled) return;
    key.enabled = false;
    w.note(`UpdateApiKey ${keyId} enabled=false`);
  }

  async getPlanLimits(usagePlanId: string): Promise<PlanLimits> {
    if (!this.#scoped().#hasPlan(usagePlanId)) throw new FakeAwsError('NotFoundException', `Invalid Usage Plan ID specified (${usagePlanId})`);
    return { ...PLAN_LIMITS };
  }

  async getUsage(): Promise<[number, number][]> {
    throw new UsageUnavailableError('the fake API Gateway does not serve GetUsage');
  }

  /** Pages are cut when each is asked for, as GetApiKeys' positions are: a listing is no snapshot. */
  async *listKeyPages(): AsyncIterable<ListedKey[]> {
    const scoped = this.#scoped();
    for (let position = 0; ; position += this.pageSize) {
      const ids = [...this.world.apiKeys.keys()].filter((id) => scoped.#holds(id)).sort();
      const page = ids.slice(position, position + this.pageSize).flatMap((id) => {
        const key = this.world.apiKeys.get(id);
        return key ? [{ id: key.id, name: key.name, createdAt: new Date(key.createdAt), tags: { ...key.tags } }] : [];
      });
      yield page;
      if (position + this.pageSize >= ids.length) return;
    }
  }

  async keysInPlan(usagePlanId: string): Promise<string[]> {
    const plan = this.#scoped().#hasPlan(usagePlanId) ? this.world.plans.get(usagePlanId) : undefined;
    if (!plan) throw new FakeAwsError('NotFoundException', `Invalid Usage Plan ID specified (${usagePlanId})`);
    return [...plan];
  }

  async keyExists(keyId: string): Promise<boolean> {
    return this.#scoped().#holds(keyId);
  }
}

/** The customer record as the serialization point (CustomerLedger), as the DynamoDB adapter keeps it. */
export class InMemoryLedger implements CustomerLedger {
  constructor(private readonly world: InMemoryWorld) {}

  async acquire(customerId: string, request: AcquireRequest, now: Date): Promise<AcquireOutcome> {
    const w = this.world;
    const profile = w.profiles.get(customerId);
    if (!profile) return { kind: 'not-found' };
    const held = profile.lease;
    const listed = request.takeOverInterrupted;
    if (held && !(isExpired(held, now) && (!held.mustFinish || listed))) {
      return { kind: 'busy', holder: clone(held) };
    }
    // As the adapter: the sweep takes over only the lease it listed (none: only a customer with no
    // lease), with the count on a shard it names.
    if (listed && (held?.owner !== listed.owner || held?.placed !== request.intent.placed)) {
      return { kind: 'refused', customer: w.recordOf(profile) };
    }
    if (request.status && !request.status.includes(profile.status)) return { kind: 'refused', customer: w.recordOf(profile) };
    if (request.key) {
      const state = profile.keys[request.key.keyId];
      if (!state || !request.key.states.includes(state)) return { kind: 'refused', customer: w.recordOf(profile) };
    }
    const interrupted = held?.mustFinish ? clone(held) : undefined;
    profile.lease = clone({ ...request.intent, owner: request.owner, until: request.until, mustFinish: request.mustFinish });
    // As the adapter: a must-finish lease puts the customer in the REPAIR partition, due when the
    // lease expires; any other leaves the partition as it was.
    if (request.mustFinish) profile.repairDueAt = request.until;
    if (request.setStatus) profile.status = request.setStatus;
    touch(profile, now);
    w.note(
      `acquire ${customerId} ${request.owner} until=${request.until}${request.mustFinish ? ' must-finish' : ''}` +
        `${interrupted ? ` interrupted=${interrupted.owner}` : ''}${request.setStatus ? ` status=${request.setStatus}` : ''}`,
    );
    return { kind: 'acquired', customer: w.recordOf(profile), interrupted };
  }

  async renew(customerId: string, owner: string, until: number, now: Date): Promise<boolean> {
    const profile = this.world.profiles.get(customerId);
    if (profile?.lease?.owner !== owner) return false;
    profile.lease.until = until;
    if (profile.repairDueAt !== undefined) profile.repairDueAt = until;
    touch(profile, now);
    return true;
  }

  async commit(customerId: string, owner: string, change: CustomerChange, now: Date, eventSeq = 0): Promise<void> {
    const w = this.world;
    const profile = w.profiles.get(customerId);
    if (profile?.lease?.owner !== owner) throw new LeaseLostError(`the lease on customer ${customerId} was lost`, 1);
    if (change.events?.length && (profile.eventSeq ?? 0) !== eventSeq) {
      throw new LeaseLostError(`the events of customer ${customerId} moved on`, 1);
    }
    const registration = change.registration ? w.registrations.get(change.registration.registrationId) : undefined;
    // The other items of the transaction have conditions of their own; one failing cancels all.
    // The registration's (it exists, and is still this attempt's when one is named) moved on with
    // another attempt: the lease is lost as well. A key item's passes on untranslated.
    if (
      change.registration &&
      (!registration ||
        (change.registration.attemptId !== undefined && registration.attemptId !== change.registration.attemptId))
    ) {
      throw new LeaseLostError(`registration ${change.registration.registrationId} moved on`, 1);
    }
    const items = w.itemsOf(customerId);
    for (const write of change.items ?? []) {
      if (write.kind === 'put' && write.key.customerId !== customerId) {
        throw new Error(`key ${write.key.keyId} belongs to customer ${write.key.customerId}, not ${customerId}`);
      }
      if (write.kind === 'update' && !items.has(write.keyId)) {
        throw new FakeAwsError('TransactionCanceledException', `key item ${write.keyId} of ${customerId} does not exist`);
      }
    }

    const at = now.toISOString();
    if (change.status) profile.status = change.status;
    if (change.tier) {
      profile.tierHistory.push({ ...change.tier, at });
      profile.tier = change.tier.to;
    }
    if (change.tierEventAt !== undefined) profile.tierEventAt = change.tierEventAt;
    if (change.keys) {
      const keys: Record<string, TrackedKeyState> = { ...profile.keys };
      for (const [keyId, state] of Object.entries(change.keys)) {
        if (state === null) delete keys[keyId];
        else keys[keyId] = state;
      }
      profile.keys = keys;
    }
    if (change.emailedKeyId !== undefined) profile.emailedKeyId = change.emailedKeyId;
    // As the adapter: a shard is set when given; the whole keyShards map is replaced, `{}` removes it.
    // A move whose lease reserved the target (place) was checked and noted there.
    if (change.shard && change.shard !== profile.shard && profile.lease.placed !== change.shard) {
      const target = w.shardRecord(change.shard);
      w.moves.push({ customerId, shardId: change.shard, placedBefore: target.placedKeys, inventoryBefore: target.inventoryKeys });
    }
    if (change.shard) profile.shard = change.shard;
    if (change.keyShards) profile.keyShards = Object.keys(change.keyShards).length > 0 ? clone(change.keyShards) : undefined;
    for (const [shardId, delta] of Object.entries(change.placedKeys ?? {})) w.countPlaced(shardId, delta);
    for (const write of change.items ?? []) {
      if (write.kind === 'put') {
        items.set(write.key.keyId, { ...clone(write.key), due: clone(write.due), replaces: write.replaces, updatedAt: at });
      } else {
        const item = items.get(write.keyId);
        if (!item) continue;
        const set = Object.fromEntries(Object.entries(write.set ?? {}).filter(([, value]) => value !== undefined));
        Object.assign(item, clone(set), { updatedAt: at, needsRepair: undefined });
        if (write.due === null) item.due = undefined;
        else if (write.due) item.due = clone(write.due);
      }
    }
    if (registration && change.registration) {
      registration.state = change.registration.state;
      registration.resumeAt = undefined;
      registration.leaseExpiresAt = 0;
      registration.updatedAt = at;
    }
    w.appendEvents(profile, change.events, { correlationId: owner, seen: eventSeq, stale: () => new Error('unreachable') });
    profile.lease = undefined;
    profile.repairDueAt = undefined;
    touch(profile, now);
    w.note(`commit ${customerId} ${owner} ${describeChange(change)}`);
  }

  async release(customerId: string, owner: string, placed?: string): Promise<void> {
    const profile = this.world.profiles.get(customerId);
    if (profile?.lease?.owner !== owner) return;
    profile.lease = undefined;
    profile.repairDueAt = undefined;
    // As the adapter: in the same transaction, the count the lease took is given back.
    if (placed) this.world.countPlaced(placed, -1);
    this.world.note(`release ${customerId} ${owner}${placed ? ` placed=${placed}` : ''}`);
  }

  async place(
    customerId: string,
    owner: string,
    placement: { shardId: string; highWaterKeys: number },
    now: Date,
  ): Promise<'placed' | 'shard-full' | 'lost'> {
    const w = this.world;
    const profile = w.profiles.get(customerId);
    if (profile?.lease?.owner !== owner) return 'lost';
    // As a claim's: below the mark (keyplan's count and the last inventory), accepting.
    const before = { ...w.shardRecord(placement.shardId) };
    const mark = placement.highWaterKeys;
    if (mark <= 0 || before.placedKeys >= mark || (before.inventoryKeys ?? 0) >= mark || before.state === 'draining') {
      w.note(`place ${customerId} ${owner} ${placement.shardId} full`);
      return 'shard-full';
    }
    w.moves.push({ customerId, shardId: placement.shardId, placedBefore: before.placedKeys, inventoryBefore: before.inventoryKeys });
    profile.lease.placed = placement.shardId;
    w.countPlaced(placement.shardId, 1);
    touch(profile, now);
    w.note(`place ${customerId} ${owner} ${placement.shardId}`);
    return 'placed';
  }

  async abandon(customerId: string, owner: string, now: Date): Promise<void> {
    const profile = this.world.profiles.get(customerId);
    if (profile?.lease?.owner !== owner) return;
    // Must-finish from now on, whatever it was taken as: only the sweep may take it.
    profile.lease.until = now.getTime();
    profile.lease.mustFinish = true;
    profile.repairDueAt = now.getTime();
    touch(profile, now);
    this.world.note(`abandon ${customerId} ${owner}`);
  }

  async findInterrupted(now: Date, limit: number): Promise<InterruptedLease[]> {
    return [...this.world.profiles.values()]
      .filter((profile) => profile.repairDueAt !== undefined && profile.repairDueAt <= now.getTime())
      .sort((a, b) => (a.repairDueAt ?? 0) - (b.repairDueAt ?? 0))
      .slice(0, limit)
      .map((profile) => ({ customerId: profile.customerId, owner: profile.lease?.owner, intent: intentOf(profile.lease) }));
  }
}

function intentOf(lease: Lease | undefined): LeaseIntent | undefined {
  if (!lease) return undefined;
  const { owner: _owner, until: _until, mustFinish: _mustFinish, ...intent } = clone(lease);
  return intent;
}

function touch(profile: ProfileItem, now: Date) {
  profile.version++;
  profile.updatedAt = now.toISOString();
}

function describeChange(change: CustomerChange): string {
  const parts: string[] = [];
  if (change.status) parts.push(`status=${change.status}`);
  if (change.tier) parts.push(`tier=${change.tier.from}->${change.tier.to}`);
  if (change.keys) parts.push(`keys=${JSON.stringify(change.keys)}`);
  if (change.emailedKeyId) parts.push(`emailed=${change.emailedKeyId}`);
  if (change.shard) parts.push(`shard=${change.shard}`);
  if (change.keyShards) parts.push(`keyShards=${JSON.stringify(change.keyShards)}`);
  for (const write of change.items ?? []) {
    parts.push(
      write.kind === 'put'
        ? `put(${write.key.keyId} ${write.key.state} ${write.key.usagePlanId}${write.due ? ` ${write.due.type}@${write.due.at}` : ''})`
        : `update(${write.keyId} ${JSON.stringify(write.set ?? {})}${write.due === null ? ' undue' : write.due ? ` ${write.due.type}@${write.due.at}` : ''})`,
    );
  }
  if (change.registration) parts.push(`registration=${change.registration.registrationId}:${change.registration.state}`);
  return parts.join(' ');
}

/** The registration items and the customer reservation they take (RegistrationStore). */
export class InMemoryRegistrationTable implements RegistrationStore, StalledRegistrations {
  constructor(private readonly world: InMemoryWorld) {}

  async claim(registration: Registration, now: Date, placement?: Placement): Promise<ClaimResult> {
    const w = this.world;
    const existing = w.registrations.get(registration.registrationId);
    if (existing) return { kind: 'exists', registration: toRegistration(existing) };
    const profile = w.profiles.get(registration.customerId);
    const free =
      !profile || profile.status === 'UNREGISTERED' || (profile.status === 'REVOKED' && registration.reactivate === true);
    if (profile && !free) return profile.status === 'REVOKED' ? { kind: 'customer-revoked' } : { kind: 'customer-taken' };
    const held = profile?.lease;
    if (held && !(isExpired(held, now) && !held.mustFinish)) return { kind: 'customer-busy', holder: clone(held) };
    // The shard's item, in the same transaction: below its mark (keyplan's count and the last
    // inventory) and accepting; a mark of 0 (no shard open) places nothing.
    const shardId = placement?.shardId ?? registration.shard;
    const before = shardId === undefined ? undefined : { ...(w.shardRecords.get(shardId) ?? { shardId, placedKeys: 0 }) };
    if (placement && before) {
      const mark = placement.highWaterKeys;
      if (mark <= 0 || before.placedKeys >= mark || (before.inventoryKeys ?? 0) >= mark || before.state === 'draining') {
        return { kind: 'shard-full' };
      }
    }

    const at = now.toISOString();
    if (shardId !== undefined && before && w.settings.shards) {
      w.placements.push({
        registrationId: registration.registrationId,
        customerId: registration.customerId,
        shardId,
        placedBefore: before.placedKeys,
        inventoryBefore: before.inventoryKeys,
        stateBefore: before.state,
        checked: placement !== undefined,
      });
    }
    if (placement) {
      registration = { ...registration, shard: placement.shardId, shardCounted: true };
      w.countPlaced(placement.shardId, 1);
    }
    w.registrations.set(registration.registrationId, { ...clone(registration), resumeAt: w.resumeAt(now, 0) });
    // Reserved: what the customer was before stays (a re-activation keeps its keys and history);
    // email and tier are written once a key is recorded, so a new customer has none yet.
    const reserved: ProfileItem = profile ?? {
      customerId: registration.customerId,
      email: '',
      tier: '',
      status: 'UNREGISTERED',
      priorStatus: 'UNREGISTERED',
      registrationId: registration.registrationId,
      keys: {},
      tierHistory: [],
      version: 0,
      createdAt: at,
      updatedAt: at,
    };
    reserved.priorStatus = reserved.status;
    reserved.status = 'PENDING';
    reserved.registrationId = registration.registrationId;
    if (registration.state !== 'QUEUED') {
      reserved.lease = { operation: 'register', owner: registration.attemptId, until: registration.leaseExpiresAt, mustFinish: true };
    }
    touch(reserved, now);
    w.profiles.set(registration.customerId, reserved);
    w.note(
      `claim ${registration.registrationId} ${registration.customerId} ${registration.state} attempt=${registration.attemptId}` +
        ` (customer was ${reserved.priorStatus})`,
    );
    return { kind: 'claimed', registration: clone(registration) };
  }

  async takeOver(
    registration: Registration,
    attempt: { attemptId: string; leaseExpiresAt: number },
    now: Date,
  ): Promise<Registration | undefined> {
    const w = this.world;
    const stored = w.registrations.get(registration.registrationId);
    if (
      !stored ||
      stored.attemptId !== registration.attemptId ||
      !(stored.leaseExpiresAt < now.getTime()) ||
      stored.state !== registration.state
    ) {
      return undefined;
    }
    const profile = w.profiles.get(registration.customerId);
    const held = profile?.lease;
    const free =
      profile?.registrationId === registration.registrationId &&
      (!held || held.owner === registration.attemptId || (isExpired(held, now) && !held.mustFinish));
    if (!profile || !free) {
      const left = held ? Math.ceil((held.until - now.getTime()) / 1000) : 1;
      throw new CustomerBusyError(`another change to customer ${registration.customerId} is running`, Math.max(1, left));
    }
    stored.attemptId = attempt.attemptId;
    stored.leaseExpiresAt = attempt.leaseExpiresAt;
    stored.updatedAt = now.toISOString();
    if (stored.state === 'QUEUED') stored.state = 'PENDING';
    stored.resumeAttempts = (stored.resumeAttempts ?? 0) + 1;
    stored.resumeAt = w.resumeAt(now, stored.resumeAttempts);
    // As the adapter: an attempt that only owes the email leaves nothing to finish should it die.
    const owesEmailOnly = registration.state === 'EMAIL_PENDING';
    profile.lease = {
      operation: owesEmailOnly ? 'owed-email' : 'register',
      owner: attempt.attemptId,
      until: attempt.leaseExpiresAt,
      mustFinish: !owesEmailOnly,
    };
    touch(profile, now);
    w.note(`takeOver ${registration.registrationId} ${registration.attemptId} -> ${attempt.attemptId}`);
    return toRegistration(stored);
  }

  async recordKey(input: RecordKeyInput): Promise<Registration> {
    const w = this.world;
    const { registration, keyId, fingerprint, state, rotateAt, now } = input;
    const { stored, profile } = this.#ownedBy(registration);
    const items = w.itemsOf(registration.customerId);
    // The key's item is new, written whole: one that exists cancels the record (nothing else ever
    // writes an item for a registration's key), and the adapter fails loudly.
    if (items.has(keyId)) {
      throw new Error(`key ${keyId} of customer ${registration.customerId} has an item already; nothing recorded over it`);
    }
    const at = now.toISOString();
    stored.state = state;
    stored.keyId = keyId;
    stored.keyFingerprint = fingerprint;
    stored.leaseExpiresAt = 0;
    stored.updatedAt = at;
    // An EMAIL_PENDING registration stays due: the sweep sends the email it owes.
    if (state === 'ACTIVE') stored.resumeAt = undefined;
    items.set(keyId, {
      customerId: registration.customerId,
      keyId,
      state: 'ACTIVE',
      usagePlanId: registration.usagePlanId,
      tier: registration.tier,
      fingerprint,
      registrationId: registration.registrationId,
      createdAt: at,
      rotateAt,
      generation: 1,
      due: { type: DUE.rotate, at: rotateAt },
      updatedAt: at,
      ...(registration.shard ? { shard: registration.shard } : {}),
    });
    if (registration.shard) profile.shard = registration.shard;
    profile.status = 'ACTIVE';
    profile.email = registration.email;
    profile.tier = registration.tier;
    profile.keys = { ...profile.keys, [keyId]: 'ACTIVE' };
    // Only once its email went out: an owed email is recorded by the commit that settles it.
    if (state === 'ACTIVE') profile.emailedKeyId = keyId;
    w.appendEvents(profile, input.events, { correlationId: registration.attemptId, seen: undefined, stale: () => new Error('unreachable') });
    profile.lease = undefined;
    touch(profile, now);
    w.note(`recordKey ${registration.registrationId} ${keyId} ${state}`);
    return toRegistration(stored);
  }

  async recordFailure(input: RecordFailureInput): Promise<Registration> {
    const w = this.world;
    const { registration, reason, detail, orphanKeyId, now } = input;
    const { stored, profile } = this.#ownedBy(registration);
    const at = now.toISOString();
    stored.state = 'FAILED';
    stored.failureReason = reason;
    stored.failureDetail = detail;
    stored.orphanKeyId = orphanKeyId;
    stored.leaseExpiresAt = 0;
    stored.updatedAt = at;
    stored.resumeAt = undefined;
    profile.status = profile.priorStatus;
    w.appendEvents(profile, input.events, { correlationId: registration.attemptId, seen: undefined, stale: () => new Error('unreachable') });
    profile.lease = undefined;
    touch(profile, now);
    // The key the claim counted on its shard will not be there.
    if (registration.shard && registration.shardCounted) w.countPlaced(registration.shard, -1);
    if (orphanKeyId) {
      w.itemsOf(registration.customerId).set(orphanKeyId, {
        customerId: registration.customerId,
        keyId: orphanKeyId,
        state: 'ORPHANED',
        usagePlanId: registration.usagePlanId,
        tier: registration.tier,
        registrationId: registration.registrationId,
        createdAt: at,
        generation: 1,
        due: { type: DUE.cleanup, at },
        ...(registration.shard ? { shard: registration.shard } : {}),
      });
    }
    w.note(`recordFailure ${registration.registrationId} ${reason}${orphanKeyId ? ` orphan=${orphanKeyId}` : ''}`);
    return toRegistration(stored);
  }

  /** The registration's own condition and the customer lease's: this attempt holds both. */
  #ownedBy(registration: Registration): { stored: RegistrationItem; profile: ProfileItem } {
    const stored = this.world.registrations.get(registration.registrationId);
    const profile = this.world.profiles.get(registration.customerId);
    if (!stored || !profile || stored.attemptId !== registration.attemptId || profile.lease?.owner !== registration.attemptId) {
      throw new RegistrationInProgressError('another attempt took over this registration', 1);
    }
    return { stored, profile };
  }

  async failUnclaimed(registrationId: string, failure: { reason: string; detail: string }, now: Date): Promise<boolean> {
    const w = this.world;
    const stored = w.registrations.get(registrationId);
    if (!stored || !(stored.state === 'QUEUED' || (stored.state === 'PENDING' && stored.leaseExpiresAt < now.getTime()))) {
      return false;
    }
    stored.state = 'FAILED';
    stored.failureReason = failure.reason;
    stored.failureDetail = failure.detail;
    stored.leaseExpiresAt = 0;
    stored.updatedAt = now.toISOString();
    stored.resumeAt = undefined;
    // As the adapter: the key the claim counted will never be made.
    if (stored.shard && stored.shardCounted) w.countPlaced(stored.shard, -1);
    // The customer returns to where it was if it is still reserved for this registration and
    // nobody is at work on it; else the registration fails alone.
    const profile = w.profiles.get(stored.customerId);
    if (
      profile?.registrationId === registrationId &&
      profile.status === 'PENDING' &&
      (!profile.lease || isExpired(profile.lease, now))
    ) {
      profile.status = profile.priorStatus;
      profile.lease = undefined;
      touch(profile, now);
    }
    w.note(`failUnclaimed ${registrationId} ${failure.reason}`);
    return true;
  }

  async releaseLease(registration: Registration, now: Date): Promise<void> {
    const w = this.world;
    const stored = w.registrations.get(registration.registrationId);
    if (stored?.attemptId === registration.attemptId) {
      stored.leaseExpiresAt = 0;
      stored.updatedAt = now.toISOString();
    }
    const profile = w.profiles.get(registration.customerId);
    if (profile?.lease?.owner === registration.attemptId) profile.lease = undefined;
    w.note(`releaseLease ${registration.registrationId} ${registration.attemptId}`);
  }

  async getRegistration(registrationId: string): Promise<Registration | undefined> {
    const stored = this.world.registrations.get(registrationId);
    return stored ? toRegistration(stored) : undefined;
  }

  async getCustomer(customerId: string): Promise<Customer | undefined> {
    const profile = this.world.profiles.get(customerId);
    // A registration in progress changes nothing readers see until it records its key.
    const status = profile?.status === 'PENDING' ? profile.priorStatus : profile?.status;
    if (!profile || status === undefined || status === 'UNREGISTERED') return undefined;
    const keys = [...this.world.itemsOf(customerId).values()].filter((item) => item.state !== 'ORPHANED').map(toCustomerKey);
    return {
      customerId,
      email: profile.email,
      tier: profile.tier,
      status,
      registrationId: profile.registrationId,
      eventSeq: profile.eventSeq ?? 0,
      createdAt: profile.createdAt,
      updatedAt: profile.updatedAt,
      keys,
    };
  }

  async findStalled(now: Date, limit: number): Promise<Registration[]> {
    const at = now.toISOString();
    return [...this.world.registrations.values()]
      .filter((stored) => stored.resumeAt !== undefined && stored.resumeAt <= at)
      .sort((a, b) => String(a.resumeAt).localeCompare(String(b.resumeAt)))
      .slice(0, limit)
      .map(toRegistration);
  }

  async stopResuming(registration: Registration, now: Date): Promise<void> {
    const stored = this.world.registrations.get(registration.registrationId);
    if (stored?.attemptId !== registration.attemptId) return;
    stored.resumeAt = undefined;
    stored.updatedAt = now.toISOString();
    this.world.note(`stopResuming ${registration.registrationId}`);
  }
}

function toRegistration(stored: RegistrationItem): Registration {
  const { resumeAt: _resumeAt, failureDetail: _detail, ...registration } = clone(stored);
  return registration;
}

function toCustomerKey(item: KeyItem): CustomerKey {
  const { due: _due, replaces: _replaces, updatedAt: _updatedAt, needsRepair: _repair, ...key } = clone(item);
  return key;
}

/** Key items and the due index over them (KeyStore, KeyRecords). */
export class InMemoryKeyTable implements KeyStore, KeyRecords {
  constructor(private readonly world: InMemoryWorld) {}

  #due(dueType: DueType, now: Date): KeyItem[] {
    const at = now.toISOString();
    return this.world
      .allKeyItems()
      .filter((item) => item.due?.type === dueType && item.due.at <= at)
      .sort((a, b) => String(a.due?.at).localeCompare(String(b.due?.at)));
  }

  async findDue(dueType: DueType, now: Date, limit: number): Promise<CustomerKey[]> {
    return this.#due(dueType, now).slice(0, limit).map(toCustomerKey);
  }

  async countDue(dueType: DueType, now: Date): Promise<number> {
    return this.#due(dueType, now).length;
  }

  async keysOf(customerId: string): Promise<CustomerKey[]> {
    return [...this.world.itemsOf(customerId).values()].map(toCustomerKey);
  }

  async advance(key: CustomerKey, from: DueType, to: { dueType: DueType; dueAt: string }, now: Date): Promise<boolean> {
    const item = this.world.itemsOf(key.customerId).get(key.keyId);
    if (item?.due?.type !== from) return false;
    item.due = { type: to.dueType, at: to.dueAt };
    item.updatedAt = now.toISOString();
    this.world.note(`advance ${key.keyId} ${from} -> ${to.dueType}@${to.dueAt}`);
    return true;
  }

  /** One partition of the due index per page, read when the page is asked for. */
  async *trackedKeyPages(): AsyncIterable<KeyRecord[]> {
    for (const dueType of KEY_DUE_TYPES) {
      yield this.world
        .allKeyItems()
        .filter((item) => item.due?.type === dueType)
        .map((item) => ({ ...toCustomerKey(item), needsRepair: clone(item.needsRepair) }));
    }
  }

  async tiersOf(customerIds: readonly string[]): Promise<Map<string, string>> {
    const tiers = new Map<string, string>();
    for (const customerId of customerIds) {
      const profile = this.world.profiles.get(customerId);
      if (profile) tiers.set(customerId, profile.tier);
    }
    return tiers;
  }

  async recordInventory(shardId: string, accountKeys: number, now: Date): Promise<void> {
    // Only a sharded world keeps shard items (a world of one has no marks to check them against).
    if (!this.world.settings.shards) return;
    const record = this.world.shardRecord(shardId);
    record.inventoryKeys = accountKeys;
    record.inventoryAt = now.toISOString();
  }

  async closeRecord(key: KeyRecord, state: 'DELETED' | 'MISSING', now: Date): Promise<void> {
    const item = this.world.itemsOf(key.customerId).get(key.keyId);
    if (item?.state !== key.state) return;
    item.state = state;
    item.due = undefined;
    item.needsRepair = undefined;
    item.updatedAt = now.toISOString();
    this.world.note(`closeRecord ${key.keyId} ${state}`);
  }
}

/** SES: every email kept, with the key values it carries. */
export class FakeMailer implements Mailer {
  constructor(private readonly world: InMemoryWorld) {}

  async send(email: OutgoingEmail): Promise<void> {
    const w = this.world;
    const keyValues = [...w.keyValues.keys()].filter((value) => email.text.includes(value) || email.html.includes(value));
    w.emails.push({ ...email, at: new Date(w.now), keyValues });
    w.note(`SendEmail ${email.to} ${keyValues.map((value) => w.keyValues.get(value)).join(',') || '(no key)'}`);
  }
}

export class FakeQueue implements RegistrationQueue {
  constructor(private readonly world: InMemoryWorld) {}

  async send(message: ProvisioningMessage): Promise<void> {
    this.world.queued.push(clone(message));
    this.world.note(`SendMessage ${message.registrationId}`);
  }
}

/** The shard items (ShardRegistry): counts and state as the table keeps them, ACTIVE keys by shard. */
export class InMemoryShardRegistry implements ShardRegistry {
  constructor(private readonly world: InMemoryWorld) {}

  async describe(shardIds: readonly string[]): Promise<ShardRecord[]> {
    return shardIds.map((shardId) => ({ ...(this.world.shardRecords.get(shardId) ?? { shardId, placedKeys: 0 }) }));
  }

  async setState(shardId: string, state: ShardState, now: Date): Promise<void> {
    const record = this.world.shardRecord(shardId);
    if (record.state === state) return;
    record.state = state;
    this.world.note(`shard ${shardId} ${state} at ${now.toISOString()}`);
  }

  /** The rotation partition of the due index (every ACTIVE key), filtered by shard. */
  async activeKeysIn(shardId: string, options: { home: boolean; limit: number }): Promise<CustomerKey[]> {
    return this.world
      .allKeyItems()
      .filter(
        (item) =>
          item.due?.type === DUE.rotate &&
          item.state === 'ACTIVE' &&
          (item.shard === shardId || (options.home && item.shard === undefined)),
      )
      .slice(0, options.limit)
      .map(toCustomerKey);
  }
}
