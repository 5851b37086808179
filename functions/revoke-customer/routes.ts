import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { NotFoundError } from '../../shared/errors';
import { jsonResponse } from '../../shared/http/problem';
import { type RevocationDeps, revokeCustomer } from '../../shared/customers/revoke-customer';
import { customerIdSchema } from '../../shared/provisioning/request-schema';
import { validate } from '../../shared/validation';

/** DELETE /customers/{customerId}/keys: every key off at once, the customer REVOKED. */
export function revokeCustomerRoutes(deps: RevocationDeps) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    if (`${event.httpMethod} ${event.resource}` !== 'DELETE /customers/{customerId}/keys') {
      throw new NotFoundError(`no route ${event.httpMethod} ${event.resource}`);
    }
    const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
    return jsonResponse(200, await revokeCustomer({ customerId, now: new Date() }, deps));
  };
}
