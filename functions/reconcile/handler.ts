import middy from '@middy/core';
import { observe } from '../../shared/observability';
import { composeReconcile } from './composition';

// Cold start: the configuration, this function's clients and adapters, once per container.
const reconcileKeys = composeReconcile();

/**
 * The daily schedule sends an EventBridge event (its `time` is "now"); an operator invokes the
 * function with `{"dryRun": true}` to see what a run would do without changing anything.
 */
interface ReconcileEvent {
  time?: string;
  dryRun?: boolean;
}

export const handler = middy((event: ReconcileEvent = {}) =>
  reconcileKeys({ now: event.time ? new Date(event.time) : new Date(), dryRun: event.dryRun === true }),
).use(observe());
