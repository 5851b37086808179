import { jsonResponse } from '../../shared/http/problem';
import { router } from '../../shared/http/router';
import { type RevocationDeps, revokeCustomer } from '../../shared/customers/revoke-customer';
import { customerIdSchema } from '../../shared/core/schemas';
import { validate } from '../../shared/validation';

/** DELETE /customers/{customerId}/keys: every key off at once, the customer REVOKED. */
export function revokeCustomerRoutes(deps: RevocationDeps) {
  return router({
    'DELETE /customers/{customerId}/keys': async (event) => {
      const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
      return jsonResponse(200, await revokeCustomer({ customerId, now: new Date() }, deps));
    },
  });
}
