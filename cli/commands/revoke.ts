import { revokeCustomer } from '../../shared/customers/revoke-customer';
import { customerIdSchema } from '../../shared/core/schemas';
import { validate } from '../../shared/validation';
import { type Command, flag, positionals } from '../command';
import { UsageError } from '../failures';

export const revokeCommand: Command = {
  name: 'revoke',
  summary: 'disable every key of a customer at once and record it REVOKED',
  options: { yes: { type: 'boolean' } },
  help: (invocation) => `Usage: ${invocation} CUSTOMER_ID --yes

Disables every key of the customer at once and records the customer and its registration
REVOKED, as DELETE /customers/{customerId}/keys does; the retirement job deletes the keys after
KEY_RETENTION_DAYS. Repeating it is harmless. The customer can only come back through a new
registration: \`keyplan provision CUSTOMER_ID ... --reactivate --idempotency-key NEW_KEY\`.

  --yes   required: the customer's API calls fail from this moment

Exit code 3 for an unknown customer, 4 while another change to the customer runs.
`,
  parse(args) {
    const [rawCustomerId] = positionals(args, ['CUSTOMER_ID']);
    const customerId = validate(customerIdSchema, rawCustomerId, 'customerId');
    if (!flag(args, 'yes')) {
      throw new UsageError(`revoke disables every key of ${customerId} at once: add --yes to confirm`);
    }
    return async ({ services, now }) => {
      const result = await revokeCustomer({ customerId, now: now() }, services.customers());
      const keys = result.disabledKeyIds.length === 0 ? 'no live key to disable' : `keys disabled: ${result.disabledKeyIds.join(', ')}`;
      return { json: result, text: `customer ${customerId}: REVOKED; ${keys}\n` };
    };
  },
};
