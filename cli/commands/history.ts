import { getCustomerHistory, MAX_HISTORY_LIMIT } from '../../shared/audit/customer-history';
import type { RecordedEvent } from '../../shared/core/events';
import { customerIdSchema } from '../../shared/core/schemas';
import { validate } from '../../shared/validation';
import { type Command, count, integerOption, positionals, table } from '../command';

/** The detail fields a reader looks for first; the rest follow in alphabetical order. */
const LEADING_FIELDS = ['keyId', 'oldKeyId', 'newKeyId', 'from', 'to', 'tier', 'reason'];
const SUMMARY_WIDTH = 80;

export const historyCommand: Command = {
  name: 'history',
  summary: "a customer's audit trail: its lifecycle events, newest first",
  options: { limit: { type: 'string' } },
  help: (invocation) => `Usage: ${invocation} CUSTOMER_ID [--limit N]

The customer's lifecycle events (key provisioned, emailed, rotated, disabled, deleted, tier
changed, revoked, ...), newest first, as GET /customers/{customerId}/events answers them page by
page: every event kept (events expire after about 400 days), or the newest N with --limit. The
text is a table of sequence number, time, type and the event's detail; --json prints
{customerId, events} with each event whole. Never a key value: events hold ids and fingerprints.

Exit code 3 when there is no such customer.
`,
  parse(args) {
    const [rawCustomerId] = positionals(args, ['CUSTOMER_ID']);
    const customerId = validate(customerIdSchema, rawCustomerId, 'customerId');
    const wanted = integerOption(args, 'limit', 1, 1_000_000);
    return async ({ services }) => {
      const deps = services.history();
      const events: RecordedEvent[] = [];
      let cursor: string | undefined;
      // Page by page, as the route serves them; stop at --limit.
      do {
        const limit = Math.min(MAX_HISTORY_LIMIT, (wanted ?? Infinity) - events.length);
        const page = await getCustomerHistory(customerId, { limit, cursor }, deps);
        events.push(...page.events);
        cursor = page.nextCursor;
      } while (cursor !== undefined && (wanted === undefined || events.length < wanted));
      const more = cursor !== undefined;
      const rows = events.map((event) => [String(event.sequence), eventTime(event.time), event.type, summarize(event.detail)]);
      const text =
        events.length === 0
          ? `customer ${customerId}: no events\n`
          : `customer ${customerId}: ${count(events.length, 'event')}, newest first\n${table([['SEQ', 'TIME', 'TYPE', 'DETAIL'], ...rows])}\n`;
      return {
        json: { customerId, events },
        text,
        notes: more ? [`older events not shown: --limit ${events.length} reached`] : [],
      };
    };
  },
};

/** To the second: events of one operation share a time, and operations seconds apart are told apart. */
export const eventTime = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')}Z`;

/** The detail as `name=value` pairs on one line, cut to SUMMARY_WIDTH characters. */
export function summarize(detail: RecordedEvent['detail']): string {
  const rank = (name: string) => (LEADING_FIELDS.includes(name) ? LEADING_FIELDS.indexOf(name) : LEADING_FIELDS.length);
  const pairs = Object.entries(detail)
    .filter(([, value]) => value !== undefined && !(Array.isArray(value) && value.length === 0))
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([name, value]) => `${name}=${Array.isArray(value) ? value.join(',') : String(value)}`);
  const line = pairs.join(' ') || '-';
  return line.length > SUMMARY_WIDTH ? `${line.slice(0, SUMMARY_WIDTH - 3)}...` : line;
}
