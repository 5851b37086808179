import { jsonResponse } from '../../shared/http/problem';
import { router } from '../../shared/http/router';
import { customerIdSchema } from '../../shared/core/schemas';
import { getCustomerUsage, type UsageDeps } from '../../shared/usage/get-customer-usage';
import { validate } from '../../shared/validation';

/** GET /customers/{customerId}/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: API Gateway usage per key and day. */
export function customerUsageRoutes(deps: UsageDeps) {
  return router({
    'GET /customers/{customerId}/usage': async (event) => {
      const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
      const query = event.queryStringParameters ?? {};
      const usage = await getCustomerUsage(customerId, { from: query.from, to: query.to }, deps);
      return jsonResponse(200, usage);
    },
  });
}
