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
export const handler = middy(async (event: ScheduledEvent) => {
  const now = new Date(event.time);
  const registrations = await sweep.resumeStalledRegistrations(now);
  const interrupted = await sweep.finishInterruptedOperations(now);
  return { registrations, interrupted };
}).use(observe());
