import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { logger } from '../logger';
import { problemDetails } from './middleware';

export type Route = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

/** The middleware chain every HTTP function shares: log context first, problem+json mapping last. */
export function httpHandler(route: Route) {
  return middy(route).use(injectLambdaContext(logger)).use(problemDetails());
}
