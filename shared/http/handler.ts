import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { bodySizeLimit, problemDetails } from './middleware';
import { observe } from '../observability';

export type Route = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

/**
 * The middleware chain every HTTP function shares: log context and metrics first, problem+json
 * mapping last, and an oversized body refused (413) before the route parses anything.
 */
export function httpHandler(route: Route) {
  return middy(route).use(observe()).use(problemDetails()).use(bodySizeLimit());
}
