import { getCustomerHistory, type HistoryDeps } from '../../shared/audit/customer-history';
import type { RegistrationStore } from '../../shared/core/ports';
import { customerIdSchema, registrationIdSchema } from '../../shared/core/schemas';
import { jsonResponse } from '../../shared/http/problem';
import { router } from '../../shared/http/router';
import { describeCustomer, getRegistrationStatus } from '../../shared/provisioning/queries';
import { validate } from '../../shared/validation';

/** The read routes of DESIGN §3 (a registration's status, a customer) and the audit trail (§9). */
export function customerReadRoutes(deps: HistoryDeps & { store: Pick<RegistrationStore, 'getRegistration' | 'getCustomer'> }) {
  return router({
    'GET /registrations/{id}': async (event) => {
      const id = validate(registrationIdSchema, event.pathParameters?.id, 'id');
      return jsonResponse(200, await getRegistrationStatus(id, deps.store));
    },
    'GET /customers/{customerId}': async (event) => {
      const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
      return jsonResponse(200, await describeCustomer(customerId, deps.store));
    },
    'GET /customers/{customerId}/events': async (event) => {
      const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
      const query = event.queryStringParameters ?? {};
      return jsonResponse(200, await getCustomerHistory(customerId, { limit: query.limit, cursor: query.cursor }, deps));
    },
  });
}
