import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { NotFoundError } from '../../shared/errors';
import { jsonResponse } from '../../shared/http/problem';
import { headerValue, parseJsonBody, validate } from '../../shared/http/request';
import { type ProvisioningDeps, provisionKey } from '../../shared/provisioning/provision-key';
import { describeCustomer, getRegistrationStatus, toRegistrationView } from '../../shared/provisioning/queries';
import { customerIdSchema, registrationIdSchema, registrationRequestSchema } from './schema';

/** The onboarding routes of DESIGN §3: parse, call one use case, map its result. */
export function registerRoutes(deps: ProvisioningDeps) {
  const requestSchema = registrationRequestSchema(Object.keys(deps.settings.tierMap));

  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    switch (`${event.httpMethod} ${event.resource}`) {
      case 'POST /registrations': {
        const request = validate(requestSchema, parseJsonBody(event));
        const idempotencyKey = headerValue(event, 'Idempotency-Key');
        // Without a header the customer id is the idempotency key: one registration per customer.
        const registrationId =
          idempotencyKey === undefined
            ? request.customerId
            : validate(registrationIdSchema, idempotencyKey, 'Idempotency-Key');
        const result = await provisionKey({ registrationId, request, now: new Date() }, deps);
        return jsonResponse(result.outcome === 'created' ? 201 : 200, toRegistrationView(result.registration), {
          location: `/registrations/${encodeURIComponent(registrationId)}`,
        });
      }
      case 'GET /registrations/{id}': {
        const id = validate(registrationIdSchema, event.pathParameters?.id, 'id');
        return jsonResponse(200, await getRegistrationStatus(id, deps.store));
      }
      case 'GET /customers/{customerId}': {
        const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
        return jsonResponse(200, await describeCustomer(customerId, deps.store));
      }
      default:
        throw new NotFoundError(`no route ${event.httpMethod} ${event.resource}`);
    }
  };
}
