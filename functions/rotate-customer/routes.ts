import { jsonResponse } from '../../shared/http/problem';
import { parseJsonBody } from '../../shared/http/request';
import { router } from '../../shared/http/router';
import { customerIdSchema } from '../../shared/core/schemas';
import type { RotationDeps } from '../../shared/rotation/rotate-key';
import { rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { integer, object, optional, validate } from '../../shared/validation';

const rotationRequestSchema = object({ graceDays: optional(integer({ min: 0, max: 365 })) }, { strict: true });

/** POST /customers/{customerId}/rotations: rotate now, e.g. for a leaked key. */
export function rotateCustomerRoutes(deps: RotationDeps) {
  return router({
    'POST /customers/{customerId}/rotations': async (event) => {
      const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
      // The body is optional: no body rotates with the configured grace period.
      const body = event.body ? validate(rotationRequestSchema, parseJsonBody(event)) : {};
      return jsonResponse(200, await rotateCustomerKeys(customerId, { now: new Date(), graceDays: body.graceDays }, deps));
    },
  });
}
