import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import * as z from 'zod';
import { NotFoundError } from '../../shared/errors';
import { jsonResponse } from '../../shared/http/problem';
import { parseJsonBody } from '../../shared/http/request';
import { type TierChangeDeps, changeTier } from '../../shared/customers/change-tier';
import { customerIdSchema, tierSchema } from '../../shared/provisioning/request-schema';
import { validate } from '../../shared/validation';

/** PUT /customers/{customerId}/tier with `{tier}`. */
export function changeTierRoutes(deps: TierChangeDeps) {
  const bodySchema = z.strictObject({ tier: tierSchema(Object.keys(deps.settings.tierMap)) });
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    if (`${event.httpMethod} ${event.resource}` !== 'PUT /customers/{customerId}/tier') {
      throw new NotFoundError(`no route ${event.httpMethod} ${event.resource}`);
    }
    const customerId = validate(customerIdSchema, event.pathParameters?.customerId, 'customerId');
    const { tier } = validate(bodySchema, parseJsonBody(event));
    const result = await changeTier(
      { customerId, tier, requestId: event.requestContext.requestId, now: new Date() },
      deps,
    );
    return jsonResponse(200, result);
  };
}
