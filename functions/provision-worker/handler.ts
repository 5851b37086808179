import middy from '@middy/core';
import { observe } from '../../shared/observability';
import { composeProvisionWorker } from './composition';

// Cold start: the configuration, this function's clients and adapters, once per container.
export const handler = middy(composeProvisionWorker()).use(observe());
