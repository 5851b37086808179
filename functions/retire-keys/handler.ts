import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { observe } from '../../shared/observability';
import { composeRetireKeys } from './composition';

// Cold start: the configuration, this function's clients and adapters, once per container.
const retireDueKeys = composeRetireKeys();

/**
 * The schedule's time chooses what is due ("now"); leases come from the clock (deps.clock), never
 * from the event.
 */
export const handler = middy((event: ScheduledEvent) => retireDueKeys(new Date(event.time))).use(observe());
