import middy from '@middy/core';
import { observe } from '../../shared/observability';
import { composePublishEvents } from './composition';

// Cold start: the configuration, this function's client and adapters, once per container.
export const handler = middy(composePublishEvents()).use(observe());
