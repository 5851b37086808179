import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { loadConfig } from '../../shared/config';
import { logger } from '../../shared/logger';
import { createWorkerDeps } from '../../shared/provisioning/compose';
import { provisioningBatchHandler } from './batch';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const deps = createWorkerDeps(loadConfig());

export const handler = middy(provisioningBatchHandler(deps)).use(injectLambdaContext(logger));
