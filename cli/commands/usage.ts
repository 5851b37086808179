import { customerIdSchema } from '../../shared/core/schemas';
import { getCustomerUsage } from '../../shared/usage/get-customer-usage';
import { validate } from '../../shared/validation';
import { type Command, positionals, stringOption, table } from '../command';

export const usageCommand: Command = {
  name: 'usage',
  summary: "API Gateway's daily usage of a customer's live keys",
  options: { from: { type: 'string' }, to: { type: 'string' } },
  help: (invocation) => `Usage: ${invocation} CUSTOMER_ID --from YYYY-MM-DD --to YYYY-MM-DD

API Gateway's daily quota counts (GetUsage) of each live key of the customer, in the usage plan
the key is in, as GET /customers/{customerId}/usage answers. Both dates are UTC and included; the
range is at most 90 days. A day API Gateway reported nothing for shows used 0, remaining -.

Exit code 1 when the AWS endpoint does not serve usage data (the local emulator never does),
2 for a bad range, 3 for an unknown customer.
`,
  parse(args) {
    const [rawCustomerId] = positionals(args, ['CUSTOMER_ID']);
    const customerId = validate(customerIdSchema, rawCustomerId, 'customerId');
    // Checked by the use case, before any AWS call, as for the HTTP route's query string.
    const range = { from: stringOption(args, 'from'), to: stringOption(args, 'to') };
    return async ({ services }) => {
      const usage = await getCustomerUsage(customerId, range, services.usage());
      const keys = usage.keys.map(
        (key) =>
          `key ${key.keyId} (${key.state}, plan ${key.usagePlanId})\n` +
          table([['DATE', 'USED', 'REMAINING'], ...key.days.map((day) => [day.date, String(day.used), day.remaining === null ? '-' : String(day.remaining)])]),
      );
      const text = `customer ${customerId}, ${usage.from} to ${usage.to}\n${keys.length === 0 ? '  (no live keys)' : keys.join('\n')}\n`;
      return { json: usage, text };
    };
  },
};
