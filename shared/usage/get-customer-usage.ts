import { type CustomerKey, DAY_MS, type KeyState } from '../core/model';
import type { KeyGateway, KeyStore } from '../core/ports';
import type { ShardKeys } from '../core/shards';
import { NotFoundError } from '../errors';
import { fail, type Infer, isoDate, object, type Schema, validate } from '../validation';

/** The longest range one request may ask for, both ends included. */
export const MAX_USAGE_DAYS = 90;

/** Keys that still unlock the API: a RETIRING key keeps working through its grace period. */
const LIVE_STATES: readonly KeyState[] = ['ACTIVE', 'RETIRING'];

export interface UsageDeps {
  keys: ShardKeys<Pick<KeyGateway, 'getUsage'>>;
  keyStore: Pick<KeyStore, 'keysOf'>;
}

export interface UsageDay {
  /** YYYY-MM-DD, UTC (API Gateway counts quotas by UTC day). */
  date: string;
  used: number;
  /** null when API Gateway reported nothing for the key that day, so the remainder is unknown. */
  remaining: number | null;
}

export interface KeyUsage {
  keyId: string;
  state: KeyState;
  usagePlanId: string;
  days: UsageDay[];
}

export interface CustomerUsage {
  customerId: string;
  from: string;
  to: string;
  keys: KeyUsage[];
}

const dates = object({ from: isoDate(), to: isoDate() });

/** `from` and `to` as in the query string: both required, inclusive, at most MAX_USAGE_DAYS apart. */
export const usageRangeSchema: Schema<Infer<typeof dates>> = (value, field) => {
  const range = dates(value, field);
  const days = daysBetween(range.from, range.to) + 1;
  if (days < 1) fail('from', 'must not be after to');
  if (days > MAX_USAGE_DAYS) {
    fail('to', `must be at most ${MAX_USAGE_DAYS - 1} days after from: a range is at most ${MAX_USAGE_DAYS} days`);
  }
  return range;
};

/**
 * API Gateway's daily usage of the customer's live keys (ACTIVE or RETIRING), each in the usage
 * plan its key item names.
 *
 * Steps: validate the range (before any AWS call), read the customer's key items, then one
 * GetUsage per live key, one after another: a customer has one or two live keys, and the calls
 * share the account's management budget with provisioning. Each day of the range gets an entry;
 * a day API Gateway reported nothing for (a key without usage is missing from its answer) is
 * `used: 0, remaining: null`, since nothing was counted but the remainder is not known.
 *
 * A customer whose keys are all disabled or deleted has no live keys: `keys` is empty.
 *
 * @throws ValidationError when `from` or `to` is missing or malformed, `from` is after `to`, or
 *   the range is longer than MAX_USAGE_DAYS; `field` names which
 * @throws NotFoundError when the customer has no key items
 * @throws UsageUnavailableError when the AWS endpoint does not serve GetUsage (a local emulator)
 * @throws TransientAwsError when AWS keeps throttling or failing
 */
export async function getCustomerUsage(
  customerId: string,
  range: { from?: string | undefined; to?: string | undefined },
  deps: UsageDeps,
): Promise<CustomerUsage> {
  const { from, to } = validate(usageRangeSchema, range);
  const keys = await deps.keyStore.keysOf(customerId);
  if (keys.length === 0) throw new NotFoundError(`no customer ${customerId}`);
  const usage: KeyUsage[] = [];
  for (const key of keys.filter((k) => LIVE_STATES.includes(k.state))) {
    usage.push(await usageOf(key, from, to, deps));
  }
  return { customerId, from, to, keys: usage };
}

async function usageOf(key: CustomerKey, from: string, to: string, deps: UsageDeps): Promise<KeyUsage> {
  const series = await deps.keys.in(key.shard).getUsage(key.usagePlanId, key.keyId, from, to);
  const start = toDate(from) as Date;
  const days: UsageDay[] = [];
  for (let i = 0; i <= daysBetween(from, to); i++) {
    const date = new Date(start.getTime() + i * DAY_MS).toISOString().slice(0, 10);
    const reported = series[i];
    days.push(reported ? { date, used: reported[0], remaining: reported[1] } : { date, used: 0, remaining: null });
  }
  return { keyId: key.keyId, state: key.state, usagePlanId: key.usagePlanId, days };
}

function toDate(value: string): Date | undefined {
  const date = new Date(`${value}T00:00:00.000Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const daysBetween = (from: string, to: string) =>
  Math.round(((toDate(to)?.getTime() ?? 0) - (toDate(from)?.getTime() ?? 0)) / DAY_MS);
