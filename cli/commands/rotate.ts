import { customerIdSchema } from '../../shared/core/schemas';
import { rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { validate } from '../../shared/validation';
import { type Command, count, integerOption, positionals, shortTime, table } from '../command';

export const rotateCommand: Command = {
  name: 'rotate',
  summary: 'rotate every ACTIVE key of a customer now (a leaked key)',
  options: { 'grace-days': { type: 'string' } },
  help: (invocation) => `Usage: ${invocation} CUSTOMER_ID [--grace-days N]

Gives every ACTIVE key of the customer a successor in the same usage plan and emails it, as
POST /customers/{customerId}/rotations does; the old key keeps working for N days, then the
retirement job disables it. Holds the customer's lease, so it never interleaves with a tier change
or a revocation of the same customer.

  --grace-days N   0-365; 0 disables the old keys as soon as their successors are emailed
                   (default: the stack's GRACE_DAYS)

A key another rotation is working on at that moment is shown as skipped. Exit code 1 when a
successor could not be emailed (the old key keeps working), 3 for an unknown customer, 4 while
another change to the customer runs.
`,
  parse(args) {
    const [rawCustomerId] = positionals(args, ['CUSTOMER_ID']);
    const customerId = validate(customerIdSchema, rawCustomerId, 'customerId');
    const requestedGrace = integerOption(args, 'grace-days', 0, 365);
    return async ({ services, now }) => {
      const result = await rotateCustomerKeys(customerId, { now: now(), graceDays: requestedGrace }, services.rotation());
      const { graceDays, rotations } = result;
      const rows = rotations.map((rotation) =>
        rotation.outcome === 'rotated'
          ? [rotation.oldKeyId, 'rotated', rotation.newKeyId, shortTime(rotation.retireAt)]
          : [rotation.oldKeyId, `skipped (${rotation.reason})`, '-', '-'],
      );
      const text =
        rotations.length === 0
          ? `customer ${customerId} has no ACTIVE key: nothing rotated\n`
          : `customer ${customerId}: ${rotations.filter((r) => r.outcome === 'rotated').length} of ${count(rotations.length, 'key')} rotated, grace ${count(graceDays, 'day')}\n` +
            `${table([['OLD KEY', 'OUTCOME', 'NEW KEY', 'OLD KEY STOPS'], ...rows])}\n`;
      return { json: result, text };
    };
  },
};
