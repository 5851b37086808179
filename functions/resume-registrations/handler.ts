import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { loadConfig } from '../../shared/config';
import { observe } from '../../shared/observability';
import { createResumeDeps } from '../../shared/provisioning/compose';
import { resumeStalledRegistrations } from '../../shared/provisioning/resume-registrations';
import { finishInterruptedOperations } from '../../shared/sweep/finish-interrupted';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const config = loadConfig();
const deps = createResumeDeps(config);

/**
 * The schedule's time chooses what is due ("now"); leases come from the clock (deps.clock), so a
 * late or repeated event never writes a lease that has already expired.
 */
export const handler = middy(async (event: ScheduledEvent) => {
  const now = new Date(event.time);
  const registrations = await resumeStalledRegistrations(now, config.resumeBatchSize, deps);
  const interrupted = await finishInterruptedOperations(now, config.resumeBatchSize, deps);
  return { registrations, interrupted };
}).use(observe());
