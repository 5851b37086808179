import { type CustomerHistory, getCustomerHistory, type HistoryDeps } from '../audit/customer-history';
import type { RecordedEvent } from '../core/events';
import { DAY_MS, type CustomerKey } from '../core/model';
import type { RegistrationStore } from '../core/ports';
import type { Registration } from '../core/registration';
import { KeyplanError, NotFoundError } from '../errors';
import { getCustomerUsage, type UsageDeps } from '../usage/get-customer-usage';
import type { CustomerProfile, CustomerProfiles } from './ports';

/** The days of usage a customer page charts, today included. */
export const USAGE_DAYS = 30;
/** The newest events a customer page shows of the audit trail. */
export const AUDIT_EVENTS = 50;

export interface CustomerPageDeps {
  profiles: CustomerProfiles;
  registrations: Pick<RegistrationStore, 'getRegistration'>;
  usage: UsageDeps;
  history: HistoryDeps;
}

export interface UsagePerDay {
  day: string;
  /** Requests of every live key of the customer that UTC day. */
  used: number;
}

export interface CustomerPage {
  profile: CustomerProfile;
  /** Where the registration stands: EMAIL_PENDING means the key works and its email is owed. */
  registration?: Pick<Registration, 'registrationId' | 'state' | 'failureReason' | 'updatedAt'> | undefined;
  keys: CustomerKey[];
  /** Summed over the live keys; `unavailable` says why there is none (the emulator has no GetUsage). */
  usage: { days: UsagePerDay[]; unavailable?: string | undefined };
  events: RecordedEvent[];
  /** Older events exist beyond the ones shown (`keyplan history` pages through them). */
  moreEvents: boolean;
}

/**
 * A customer as the console shows it: the profile and its tier history, every key with its
 * lifecycle dates (newest first), the registration's state, the usage of the last USAGE_DAYS days
 * (GetUsage per live key, as GET /customers/{id}/usage) and the newest AUDIT_EVENTS events of the
 * audit trail (as GET /customers/{id}/events).
 *
 * Usage and the audit trail are parts of the page, not conditions of it: a GetUsage the endpoint
 * does not serve, or that AWS keeps throttling, leaves the chart empty with the reason.
 *
 * @throws NotFoundError when the table has no profile of the customer
 * @throws TransientAwsError when DynamoDB keeps throttling or failing
 */
export async function getCustomerPage(customerId: string, now: Date, deps: CustomerPageDeps): Promise<CustomerPage> {
  const profile = await deps.profiles.profileOf(customerId);
  if (!profile) throw new NotFoundError(`no customer ${customerId}`);
  const [registration, usage, history] = await Promise.all([
    deps.registrations.getRegistration(profile.registrationId),
    usagePerDay(customerId, now, deps.usage),
    getCustomerHistory(customerId, { limit: AUDIT_EVENTS }, deps.history).catch((error: unknown): CustomerHistory => {
      if (error instanceof NotFoundError) return { customerId, events: [] };
      throw error;
    }),
  ]);
  const keys = [...profile.keys].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.generation - a.generation);
  return {
    profile,
    registration: registration && {
      registrationId: registration.registrationId,
      state: registration.state,
      failureReason: registration.failureReason,
      updatedAt: registration.updatedAt,
    },
    keys,
    usage,
    events: history.events,
    moreEvents: history.nextCursor !== undefined,
  };
}

async function usagePerDay(customerId: string, now: Date, deps: UsageDeps): Promise<CustomerPage['usage']> {
  const to = now.toISOString().slice(0, 10);
  const from = new Date(Date.parse(`${to}T00:00:00Z`) - (USAGE_DAYS - 1) * DAY_MS).toISOString().slice(0, 10);
  const days = new Map<string, number>();
  for (let i = 0; i < USAGE_DAYS; i++) days.set(new Date(Date.parse(`${from}T00:00:00Z`) + i * DAY_MS).toISOString().slice(0, 10), 0);
  const chart = () => [...days].map(([day, used]) => ({ day, used }));
  try {
    const usage = await getCustomerUsage(customerId, { from, to }, deps);
    for (const key of usage.keys) for (const day of key.days) days.set(day.date, (days.get(day.date) ?? 0) + day.used);
    return { days: chart() };
  } catch (error) {
    // No key items at all: nothing used. Anything keyplan can name (no GetUsage locally, AWS
    // throttling) is said on the page; anything else is a failure of the page.
    if (error instanceof NotFoundError) return { days: chart() };
    if (error instanceof KeyplanError) return { days: chart(), unavailable: error.message };
    throw error;
  }
}
