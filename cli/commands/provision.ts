import { enqueueRegistration } from '../../shared/provisioning/enqueue-registration';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { toRegistrationView } from '../../shared/provisioning/queries';
import { customerIdSchema } from '../../shared/core/schemas';
import { registrationIdFor, registrationRequestSchema } from '../../shared/provisioning/request-schema';
import { validate } from '../../shared/validation';
import { type Command, flag, positionals, requiredOption, stringOption } from '../command';
import { EXIT, UsageError } from '../failures';
import { formatRegistration } from './views';

export const provisionCommand: Command = {
  name: 'provision',
  summary: 'register a customer: an API key in its tier\'s plan, emailed to the customer',
  options: {
    email: { type: 'string' },
    tier: { type: 'string' },
    name: { type: 'string' },
    'idempotency-key': { type: 'string' },
    async: { type: 'boolean' },
    reactivate: { type: 'boolean' },
  },
  help: (invocation) => `Usage: ${invocation} CUSTOMER_ID --email ADDRESS --tier TIER [--name NAME]
       [--idempotency-key KEY] [--async] [--reactivate]

Registers the customer as POST /registrations does: creates an API key, puts it into the usage
plan of TIER and emails it to ADDRESS. The key value goes by email only; the output shows the
key's id and fingerprint. Running the same command again is safe: a finished registration is
shown as it is (no second key, no second email), an unfinished one is resumed, and one whose
email failed (status EMAIL_PENDING) sends the email again.

  --email ADDRESS        where the key goes
  --tier TIER            one of the tiers of the stack (infra/tiers.json)
  --name NAME            the customer's name, for the email
  --idempotency-key KEY  names the registration (default: CUSTOMER_ID, so one per customer)
  --async                queue it for the provisioning worker (like Prefer: respond-async) and
                         return at once with status QUEUED; follow it with
                         \`keyplan status --registration KEY\`
  --reactivate           register a revoked customer again; needs a new --idempotency-key

Exit code 1 when the key works but its email could not be sent (EMAIL_PENDING): run the same
command again to send it.
`,
  parse(args) {
    const [rawCustomerId = ''] = positionals(args, ['CUSTOMER_ID']);
    const customerId = validate(customerIdSchema, rawCustomerId, 'customerId');
    const email = requiredOption(args, 'email');
    const tier = requiredOption(args, 'tier');
    const name = stringOption(args, 'name');
    const reactivate = flag(args, 'reactivate');
    const idempotencyKey = stringOption(args, 'idempotency-key');
    if (reactivate && idempotencyKey === undefined) {
      // The customer id names the revoked registration already; a re-activation is a new one.
      throw new UsageError('--reactivate needs a new --idempotency-key (run again with the same one to resume)');
    }
    // A repeated command without a key resumes or replays instead of competing.
    const registrationId = registrationIdFor(customerId, idempotencyKey, 'idempotency-key');

    return async ({ config, services, now }) => {
      const request = validate(registrationRequestSchema(Object.keys(config.tierMap)), {
        customerId,
        email,
        tier,
        ...(name === undefined ? {} : { name }),
        ...(reactivate ? { reactivate: true } : {}),
      });
      const command = { registrationId, request, now: now() };
      const { outcome, registration } = flag(args, 'async')
        ? await enqueueRegistration(command, services.enqueue())
        : await provisionKey(command, services.provisioning());
      const view = toRegistrationView(registration);
      const notes: string[] = [];
      if (view.status === 'EMAIL_PENDING') {
        notes.push('the key works but its email could not be sent: run the same command again to send it');
      }
      if (view.status === 'QUEUED' || view.status === 'PENDING') {
        notes.push(`queued for the provisioning worker: follow it with \`keyplan status --registration ${registrationId}\``);
      }
      return {
        json: { outcome, ...view },
        text: formatRegistration(view, `registration ${view.registrationId}: ${view.status} (${outcome})`),
        exitCode: view.status === 'EMAIL_PENDING' ? EXIT.failed : EXIT.ok,
        notes,
      };
    };
  },
};
