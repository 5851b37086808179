import middy from '@middy/core';
import { observe } from '../../shared/observability';
import { composeChangeTierEvents } from './composition';

// Cold start: the configuration, this function's clients and adapters, once per container.
export const handler = middy(composeChangeTierEvents()).use(observe());
