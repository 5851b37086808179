import { tiersOf } from '../../shared/core/shards';
import { jsonResponse } from '../../shared/http/problem';
import { headerValue, parseJsonBody } from '../../shared/http/request';
import { router } from '../../shared/http/router';
import { validate } from '../../shared/validation';
import { type EnqueueDeps, enqueueRegistration } from '../../shared/provisioning/enqueue-registration';
import { type ProvisioningDeps, provisionKey } from '../../shared/provisioning/provision-key';
import { toRegistrationView } from '../../shared/provisioning/queries';
import { registrationIdFor, registrationRequestSchema } from '../../shared/provisioning/request-schema';

/**
 * The onboarding write of DESIGN §3: parse, call one use case, map its result. The reads of what it
 * wrote (status, customer, audit trail) are customerReads' (functions/customer-reads).
 */
export function registerRoutes(deps: ProvisioningDeps & EnqueueDeps) {
  const requestSchema = registrationRequestSchema(tiersOf(deps.settings.shards));

  return router({
    'POST /registrations': async (event) => {
      const request = validate(requestSchema, parseJsonBody(event));
      const idempotencyKey = headerValue(event, 'Idempotency-Key');
      const registrationId = registrationIdFor(request.customerId, idempotencyKey, 'Idempotency-Key');
      const location = `/registrations/${encodeURIComponent(registrationId)}`;
      const command = { registrationId, request, now: new Date() };
      if (prefersAsync(headerValue(event, 'Prefer'))) {
        const queued = await enqueueRegistration(command, deps);
        return queued.outcome === 'replayed'
          ? jsonResponse(200, toRegistrationView(queued.registration), { location })
          : jsonResponse(202, toRegistrationView(queued.registration), {
              location,
              'preference-applied': 'respond-async',
            });
      }
      const result = await provisionKey(command, deps);
      return jsonResponse(result.outcome === 'created' ? 201 : 200, toRegistrationView(result.registration), {
        location,
      });
    },
  });
}

/** RFC 7240: `Prefer: respond-async` (among other preferences, in any case). */
function prefersAsync(prefer: string | undefined): boolean {
  return (prefer ?? '').split(',').some((preference) => preference.trim().toLowerCase().startsWith('respond-async'));
}
