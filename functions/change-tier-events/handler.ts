import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { loadConfig } from '../../shared/config';
import { logger } from '../../shared/logger';
import { createCustomerDeps } from '../../shared/provisioning/compose';
import { tierChangeBatchHandler } from './batch';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const deps = createCustomerDeps(loadConfig());

export const handler = middy(tierChangeBatchHandler(deps)).use(injectLambdaContext(logger));
