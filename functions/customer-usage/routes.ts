import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { NotFoundError } from '../../shared/errors';
import { jsonResponse } from '../../shared/http/problem';
import { customerIdSchema } from '../../shared/provisioning/request-schema';
import { getCustomerUsage, type UsageDeps } from '../../shared/usage/get-customer-usage';
import { validate } from '../../shared/validation';

/** GET /customers/{customerId}/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: API Gateway usage per key and day. */
export function customerUsageRoutes(deps: UsageDeps) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    if (`${event.httpMethod} ${event.resource}` !== 'GET /customers/{customerId}/usage') {
      throw new NotFoundError(`no route ${event.httpMethod} ${event.resource}`);
    }
    const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
    const query = event.queryStringParameters ?? {};
    const usage = await getCustomerUsage(customerId, { from: query.from, to: query.to }, deps);
    return jsonResponse(200, usage);
  };
}
