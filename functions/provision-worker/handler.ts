import middy from '@middy/core';
import { loadConfig } from '../../shared/config';
import { createWorkerDeps } from '../../shared/provisioning/compose';
import { provisioningBatchHandler } from './batch';
import { observe } from '../../shared/observability';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const deps = createWorkerDeps(loadConfig());

export const handler = middy(provisioningBatchHandler(deps)).use(observe());
