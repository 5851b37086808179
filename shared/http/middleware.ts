import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { KeyplanError } from '../errors';
import { logger } from '../logger';
import { problemResponse } from './problem';
import { assertBodyWithinLimit } from './request';

/**
 * Turns any error into a problem+json answer. Expected client errors are logged at info; the rest
 * at error with the cause chain, which stays in the logs and out of the response.
 */
export function problemDetails(): MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context> {
  return {
    onError: async (request) => {
      const response = problemResponse(request.error, request.context.awsRequestId);
      if (response.statusCode >= 500 || !(request.error instanceof KeyplanError)) {
        logger.error('request failed', { status: response.statusCode, error: request.error });
      } else {
        logger.info('request refused', { status: response.statusCode, problem: request.error.code });
      }
      request.response = response;
    },
  };
}

/**
 * Refuses a body over MAX_BODY_BYTES (413) before any route parses it, for every HTTP function in
 * one place: API Gateway itself lets up to 10 MB through.
 */
export function bodySizeLimit(): MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context> {
  return {
    before: (request) => {
      assertBodyWithinLimit(request.event);
    },
  };
}
