import { tiersOf } from '../../shared/core/shards';
import { jsonResponse } from '../../shared/http/problem';
import { parseJsonBody } from '../../shared/http/request';
import { router } from '../../shared/http/router';
import { type TierChangeDeps, changeTier } from '../../shared/customers/change-tier';
import { customerIdSchema, tierSchema } from '../../shared/core/schemas';
import { object, validate } from '../../shared/validation';

/** PUT /customers/{customerId}/tier with `{tier}`. */
export function changeTierRoutes(deps: TierChangeDeps) {
  const bodySchema = object({ tier: tierSchema(tiersOf(deps.settings.shards)) }, { strict: true });
  return router({
    'PUT /customers/{customerId}/tier': async (event) => {
      const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
      const { tier } = validate(bodySchema, parseJsonBody(event));
      const result = await changeTier(
        { customerId, tier, requestId: event.requestContext.requestId, now: new Date() },
        deps,
      );
      return jsonResponse(200, result);
    },
  });
}
