import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import * as z from 'zod';
import { NotFoundError } from '../../shared/errors';
import { jsonResponse } from '../../shared/http/problem';
import { parseJsonBody } from '../../shared/http/request';
import { customerIdSchema } from '../../shared/provisioning/request-schema';
import type { RotationDeps } from '../../shared/rotation/rotate-key';
import { rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { validate } from '../../shared/validation';

const rotationRequestSchema = z.strictObject({ graceDays: z.number().int().min(0).max(365).optional() });

/** POST /customers/{customerId}/rotations: rotate now, e.g. for a leaked key. */
export function rotateCustomerRoutes(deps: RotationDeps) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    if (`${event.httpMethod} ${event.resource}` !== 'POST /customers/{customerId}/rotations') {
      throw new NotFoundError(`no route ${event.httpMethod} ${event.resource}`);
    }
    const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
    // The body is optional: no body rotates with the configured grace period.
    const body = event.body ? validate(rotationRequestSchema, parseJsonBody(event)) : {};
    return jsonResponse(200, await rotateCustomerKeys(customerId, { now: new Date(), graceDays: body.graceDays }, deps));
  };
}
