import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { loadConfig } from '../../shared/config';
import { NotFoundError } from '../../shared/errors';
import { logger } from '../../shared/logger';
import { problemDetails } from '../../shared/http/middleware';
import { jsonResponse } from '../../shared/http/problem';
import { headerValue, parseJsonBody, validate } from '../../shared/http/request';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { describeCustomer, getRegistrationStatus, toRegistrationView } from '../../shared/provisioning/queries';
import { createProvisioningDeps } from '../../shared/provisioning/compose';
import { customerIdSchema, registrationIdSchema, registrationRequestSchema } from './schema';

const config = loadConfig();
const deps = createProvisioningDeps(config);
const requestSchema = registrationRequestSchema(Object.keys(config.tierMap));

async function route(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  switch (`${event.httpMethod} ${event.resource}`) {
    case 'POST /registrations': {
      const request = validate(requestSchema, parseJsonBody(event));
      const idempotencyKey = headerValue(event, 'Idempotency-Key');
      const registrationId =
        idempotencyKey === undefined ? request.customerId : validate(registrationIdSchema, idempotencyKey, 'Idempotency-Key');
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
}

export const handler = middy(route).use(injectLambdaContext(logger)).use(problemDetails());
