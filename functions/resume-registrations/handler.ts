import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { loadConfig } from '../../shared/config';
import { observe } from '../../shared/observability';
import { createResumeDeps } from '../../shared/provisioning/compose';
import { resumeStalledRegistrations } from '../../shared/provisioning/resume-registrations';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const config = loadConfig();
const deps = createResumeDeps(config);

/** The schedule's time, not the clock, is "now". */
export const handler = middy((event: ScheduledEvent) =>
  resumeStalledRegistrations(new Date(event.time), config.resumeBatchSize, deps),
).use(observe());
