import middy from '@middy/core';
import { loadConfig } from '../../shared/config';
import { createCustomerDeps } from '../../shared/provisioning/compose';
import { tierChangeBatchHandler } from './batch';
import { observe } from '../../shared/observability';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const deps = createCustomerDeps(loadConfig());

export const handler = middy(tierChangeBatchHandler(deps)).use(observe());
