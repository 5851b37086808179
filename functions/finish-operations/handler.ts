import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { observe } from '../../shared/observability';
import { composeFinishOperations } from './composition';

// Cold start: the configuration, this function's clients and adapters, once per container.
const finish = composeFinishOperations();

/**
 * The schedule's time is the rotation's `now` (a resumed rotation's successor is due from it);
 * which leases have expired is judged by the clock (deps.clock), as every holder judges them.
 */
export const handler = middy((event: ScheduledEvent) => finish(new Date(event.time))).use(observe());
