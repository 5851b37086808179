import { createHash } from 'node:crypto';
import { UnknownShardError } from '../errors';

/**
 * A shard: an account and Region holding the seller's API stage and one usage plan per tier
 * (DESIGN §8). The control plane (table, HTTP API, queues, functions) stays in the home account;
 * each customer lives on one shard and every operation on its keys acts there.
 */
export interface Shard {
  /** Lower-case letters and digits; also the prefix of the key values made here (`kp_<id>_…`). */
  id: string;
  /** tier -> usage plan id in this shard. Every shard offers the same tiers. */
  plans: Readonly<Record<string, string>>;
  /** Where this shard's customers call the API; told in every key email. */
  baseUrl?: string | undefined;
  /**
   * Placement stops at this many keys placed here (default 80% of the 10,000-key ceiling).
   * Undefined for the implicit single shard of a deployment without a shard list: it places
   * every customer, as keyplan always did.
   */
  highWaterKeys?: number | undefined;
  /** The account's key ceiling (10,000 per Region, not adjustable); for the report. */
  keyCeiling: number;
  /** `draining`: no new customer, and `shards drain` moves its customers elsewhere. */
  state: ShardState;
}

export type ShardState = 'accepting' | 'draining';

/** The shard of a record that names none: written before shards existed, so the home shard. */
export function shardOf(shards: readonly Shard[], id: string | undefined): Shard {
  if (id === undefined) return shards[0]!;
  const shard = shards.find((candidate) => candidate.id === id);
  if (!shard) throw new UnknownShardError(id);
  return shard;
}

/** The shard of one key in the customer's list: where the customer is, unless a move left it behind. */
export function keyShardOf(customer: { shard?: string | undefined; keyShards?: Readonly<Record<string, string>> | undefined }, keyId: string) {
  return (customer.keyShards && Object.hasOwn(customer.keyShards, keyId) ? customer.keyShards[keyId] : undefined) ?? customer.shard;
}

/**
 * The usage plan of a tier in a shard, or undefined for a name that is no tier. Own keys only: a
 * tier named "constructor" or "__proto__" must not find Object.prototype's members.
 */
export function planIn(shard: Shard, tier: string): string | undefined {
  return Object.hasOwn(shard.plans, tier) ? shard.plans[tier] : undefined;
}

/** Every tier keyplan offers: the first shard's, which every other shard must match (config). */
export const tiersOf = (shards: readonly Shard[]) => Object.keys(shards[0]!.plans);

/**
 * The shards a new customer may be placed on, in the order to try them: those accepting, starting
 * at one chosen by the customer id's hash, so that concurrent registrations spread over every
 * shard (each with its own management budget) and one customer's retries try the same order.
 * The claim then checks the chosen shard's headroom atomically (RegistrationStore.claim).
 */
export function placementOrder(shards: readonly Shard[], customerId: string): Shard[] {
  const open = shards.filter((shard) => shard.state === 'accepting');
  if (open.length <= 1) return open;
  const start = createHash('sha256').update(customerId).digest().readUInt32BE(0) % open.length;
  return [...open.slice(start), ...open.slice(0, start)];
}

/** API Gateway's keys in each shard: every key operation goes to the shard that holds the key. */
export interface ShardKeys<G> {
  in(shardId: string | undefined): G;
}

/** One gateway for every shard: a single-shard deployment, and tests of one shard. */
export function oneShard<G>(gateway: G): ShardKeys<G> {
  return { in: () => gateway };
}

/** The one shard of a deployment without a shard list: here, with these plans, placing everyone. */
export function singleShard(plans: Readonly<Record<string, string>>, baseUrl?: string): Shard[] {
  return [{ id: 'home', plans, baseUrl, keyCeiling: 10_000, state: 'accepting' }];
}
