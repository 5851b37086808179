import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { observe } from '../../shared/observability';
import { composeRotateKeys } from './composition';

// Cold start: the configuration, this function's clients and adapters, once per container.
const rotateDueKeys = composeRotateKeys();

/**
 * The schedule's time chooses what is due ("now"): a delayed or replayed event finds the same keys.
 * Leases come from the clock (deps.clock), never from the event.
 */
export const handler = middy((event: ScheduledEvent) => rotateDueKeys(new Date(event.time))).use(observe());
