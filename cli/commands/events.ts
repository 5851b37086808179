import type { RecordedEvent } from '../../shared/core/events';
import { type Command, count, flag, positionals } from '../command';
import { UsageError } from '../failures';
import { eventTime, summarize } from './history';

/** The longest event type (CustomerReactivated): the detail starts in one column. */
const TYPE_WIDTH = 19;

export const eventsCommand: Command = {
  name: 'events',
  summary: "every customer's lifecycle events as they are committed (--follow)",
  options: { follow: { type: 'boolean', short: 'f' } },
  help: (invocation) => `Usage: ${invocation} --follow (or -f)

Prints every lifecycle event (key provisioned, emailed, rotated, disabled, deleted, tier changed,
revoked, ...) of every customer as it is committed, one line each, until Ctrl-C: time, sequence
number, customer, type and the event's detail. With --json, one JSON object per line: the event
whole, as GET /customers/{customerId}/events answers it. Never a key value: events hold ids and
fingerprints.

It reads the table's DynamoDB stream from now on (nothing from before the start; for one
customer's trail use \`keyplan history CUSTOMER_ID\`). A customer's events come in their order.
Needs dynamodb:DescribeTable on the table and DescribeStream, GetShardIterator and GetRecords on
its stream.

Exit code 0 when stopped with Ctrl-C; 2 when the table has no stream.
`,
  parse(args) {
    positionals(args, []);
    if (!flag(args, 'follow')) {
      throw new UsageError(
        "--follow is required: `keyplan events --follow` prints every event as it is committed; for one customer's trail, `keyplan history CUSTOMER_ID`",
      );
    }
    const json = flag(args, 'json');
    return async ({ services, stdout, stderr, interrupted }) => {
      let printed = 0;
      const events = services.eventFeed().follow({
        signal: interrupted(),
        onStart: () => void stderr.write('keyplan events: following every event committed from now on; Ctrl-C stops\n'),
        onMalformed: (reason) => void stderr.write(`keyplan events: skipped ${reason}\n`),
      });
      for await (const event of events) {
        stdout.write(`${json ? JSON.stringify(event) : eventLine(event)}\n`);
        printed++;
      }
      return { json: {}, text: '', streamed: true, notes: [`stopped after ${count(printed, 'event')}`] };
    };
  },
};

/** One event on one line: time, sequence number, customer, type and the detail's summary. */
export const eventLine = (event: RecordedEvent): string =>
  `${eventTime(event.time)}  ${String(event.sequence).padStart(4)}  ${event.customerId}  ${event.type.padEnd(TYPE_WIDTH)}  ${summarize(event.detail)}`;
