import middy from '@middy/core';
import { loadConfig } from '../../shared/config';
import { createReconcileDeps } from '../../shared/provisioning/compose';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';
import { observe } from '../../shared/observability';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const config = loadConfig();
const deps = createReconcileDeps(config);

/**
 * The daily schedule sends an EventBridge event (its `time` is "now"); an operator invokes the
 * function with `{"dryRun": true}` to see what a run would do without changing anything.
 */
interface ReconcileEvent {
  time?: string;
  dryRun?: boolean;
}

export const handler = middy((event: ReconcileEvent = {}) =>
  reconcileKeys({ now: event.time ? new Date(event.time) : new Date(), dryRun: event.dryRun === true }, deps),
).use(observe());
