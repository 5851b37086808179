import type { MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger } from './logger';
import { metrics } from './metrics';

// A cold start is the first invocation of an on-demand container (as Powertools counts it): a
// provisioned or SnapStart one was initialised before it was asked for anything, and outside
// Lambda (tests, the local stack) nothing is.
let coldStart = process.env.AWS_LAMBDA_INITIALIZATION_TYPE === 'on-demand';

/**
 * The middleware every function handler starts with: the Lambda context on every log line, and the
 * invocation's metrics flushed as one EMF line when it ends, whether the handler returned or threw
 * (with a ColdStart count on the first). One invocation at a time per container, as Lambda runs
 * them: invocations side by side in one process (the local poller, tests) share the context and the
 * metrics buffer.
 */
export function observe(): MiddlewareObj<unknown, unknown, Error, Context>[] {
  return [
    {
      before: ({ context }) => {
        logger.setContext({
          cold_start: coldStart,
          function_arn: context.invokedFunctionArn,
          function_memory_size: context.memoryLimitInMB,
          function_name: context.functionName,
          function_request_id: context.awsRequestId,
        });
        if (coldStart) metrics.coldStart(context.functionName);
        coldStart = false;
      },
      after: metrics.flush,
      onError: metrics.flush,
    },
  ];
}
