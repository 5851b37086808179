import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { loadConfig } from '../../shared/config';
import { createRotationDeps } from '../../shared/provisioning/compose';
import { rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import { observe } from '../../shared/observability';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const config = loadConfig();
const deps = createRotationDeps(config);

/**
 * The schedule's time chooses what is due ("now"): a delayed or replayed event finds the same keys.
 * Leases come from the clock (deps.clock), never from the event.
 */
export const handler = middy((event: ScheduledEvent) =>
  rotateDueKeys(new Date(event.time), config.rotationBatchSize, deps),
).use(observe());
