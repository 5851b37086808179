import { describeCustomer, getRegistrationStatus } from '../../shared/provisioning/queries';
import { customerIdSchema, registrationIdSchema } from '../../shared/core/schemas';
import { validate } from '../../shared/validation';
import { type Command, stringOption } from '../command';
import { UsageError } from '../failures';
import { formatCustomer, formatRegistration } from './views';

export const statusCommand: Command = {
  name: 'status',
  summary: 'a customer (tier, status, keys) or a registration',
  options: { registration: { type: 'string' } },
  help: (invocation) => `Usage: ${invocation} CUSTOMER_ID
       ${invocation} --registration ID

With CUSTOMER_ID: the customer's tier and status and every key (id, state, fingerprint, dates),
as GET /customers/{customerId} answers. With --registration: where the registration ID stands
(QUEUED, PENDING, EMAIL_PENDING, ACTIVE, FAILED with its reason, REVOKED), as
GET /registrations/{id} answers; ID is its idempotency key (the customer id unless another was
given).

Exit code 3 when there is no such customer or registration.
`,
  parse(args) {
    const registration = stringOption(args, 'registration');
    if (registration !== undefined) {
      if (args.positionals.length > 0) throw new UsageError('give CUSTOMER_ID or --registration ID, not both');
      const registrationId = validate(registrationIdSchema, registration, 'registration');
      return async ({ services }) => {
        const view = await getRegistrationStatus(registrationId, services.provisioning().store);
        return { json: view, text: formatRegistration(view) };
      };
    }
    if (args.positionals.length !== 1) {
      throw new UsageError(args.positionals.length === 0 ? 'no CUSTOMER_ID or --registration ID given' : `unexpected argument "${args.positionals[1]}"`);
    }
    const customerId = validate(customerIdSchema, args.positionals[0], 'customerId');
    return async ({ services }) => {
      const view = await describeCustomer(customerId, services.provisioning().store);
      return { json: view, text: formatCustomer(view) };
    };
  },
};
