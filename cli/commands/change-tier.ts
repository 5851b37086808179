import { randomUUID } from 'node:crypto';
import { changeTier } from '../../shared/customers/change-tier';
import { customerIdSchema, tierSchema } from '../../shared/core/schemas';
import { validate } from '../../shared/validation';
import { type Command, count, positionals, table } from '../command';

export const changeTierCommand: Command = {
  name: 'change-tier',
  summary: "move every live key of a customer into another tier's usage plan",
  help: (invocation) => `Usage: ${invocation} CUSTOMER_ID TIER

Moves every live key (ACTIVE and RETIRING) of the customer out of its usage plan and into the
plan of TIER, and records the change in the customer's tier history, as
PUT /customers/{customerId}/tier does. Already in TIER: nothing changes (changed: false).
Between the two API Gateway calls a key is in no plan for a moment, and moving resets the key's
quota counters. Holds the customer's lease.

If a key cannot join the new plan, every key moved so far goes back and the tier stays: exit code
1. Exit code 3 for an unknown customer, 4 while another change to the customer runs.
`,
  parse(args) {
    const [rawCustomerId, rawTier = ''] = positionals(args, ['CUSTOMER_ID', 'TIER']);
    const customerId = validate(customerIdSchema, rawCustomerId, 'customerId');
    return async ({ config, services, now }) => {
      const tier = validate(tierSchema(Object.keys(config.tierMap)), rawTier, 'tier');
      // Recorded in the tier history where the HTTP route records its request id.
      const requestId = `keyplan-cli-${randomUUID()}`;
      const result = await changeTier({ customerId, tier, requestId, now: now() }, services.customers());
      const heading = result.changed
        ? `customer ${customerId}: tier ${result.from} -> ${result.to}, ${count(result.keys.length, 'key')} moved`
        : `customer ${customerId}: already in tier ${result.to}, nothing changed`;
      const keys = result.keys.length === 0 ? '' : `${table([['KEY', 'USAGE PLAN'], ...result.keys.map((key) => [key.keyId, key.usagePlanId])])}\n`;
      return { json: result, text: `${heading}\n${keys}` };
    };
  },
};
