import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { observe } from '../../shared/observability';
import { composeResumeRegistrations } from './composition';

// Cold start: the configuration, this function's clients and adapters, once per container.
const sweep = composeResumeRegistrations();

/**
 * The schedule's time chooses what is due ("now"); leases come from the clock (deps.clock), so a
 * late or repeated event never writes a lease that has already expired.
 */
export const handler = middy((event: ScheduledEvent) => sweep(new Date(event.time))).use(observe());
