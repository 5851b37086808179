// The worker side of the queue figures (throughput, scale-out): the deployed worker's handler
// modules, one per container, each polling its queue (a queue trigger's containers; scale-out has
// one queue per shard) until every registration was acknowledged, every queue is empty (a message
// that ends in the DLQ is never acknowledged), or time runs out.
import { performance } from 'node:perf_hooks';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { startQueuePoller } from '../infra/local/queue-poller';
import { createAwsClients } from '../shared/aws/clients';
import { queueDepth } from '../test/support/emulator-probe';
import { progress } from './child';

export type WorkerHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** A queue and the containers its trigger runs (as many as its MaximumConcurrency). */
export interface DrainedQueue {
  queueUrl: string;
  handlers: readonly WorkerHandler[];
}

export interface DrainOptions {
  queues: readonly DrainedQueue[];
  region: string;
  /** How many messages there are to acknowledge. */
  registrations: number;
  timeoutSeconds: number;
  /** For the queue's depth (through the bench's proxy, like the run's other reads). */
  sqs: SQSClient;
  /** Every batch a container was handed, with the ids it returned to the queue and when it ended. */
  onBatch?: (event: SQSEvent, failed: ReadonlySet<string>, at: number) => void;
}

export interface Drained {
  /** performance.now() when the pollers started. */
  started: number;
  /** Until the last acknowledgement (or the timeout). */
  seconds: number;
  timedOut: boolean;
  acknowledged: number;
  returned: number;
}

/** Polls each queue with one poller per handler (a container each) until they are worked off. */
export async function drainWithWorkers(options: DrainOptions): Promise<Drained> {
  const { registrations, queues } = options;
  let acknowledged = 0;
  let returned = 0;
  let lastAcknowledgedAt = 0;
  let allAcknowledged: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (allAcknowledged = resolve));
  const counted =
    (handler: WorkerHandler): WorkerHandler =>
    async (event, context) => {
      const response = await handler(event, context);
      const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
      const now = performance.now();
      options.onBatch?.(event, failed, now);
      acknowledged += event.Records.length - failed.size;
      returned += failed.size;
      lastAcknowledgedAt = now;
      if (acknowledged >= registrations) allAcknowledged();
      return response;
    };

  const started = performance.now();
  const pollers = queues.flatMap(({ queueUrl, handlers }) =>
    handlers.map((handler) =>
      startQueuePoller({ sqs: createAwsClients().sqs, queueUrl, handler: counted(handler), concurrency: 1, region: options.region }),
    ),
  );
  const ticker = setInterval(
    () => progress(`${acknowledged}/${registrations} done after ${Math.round((performance.now() - started) / 1000)} s`),
    30_000,
  );
  let waiting = true;
  const drained = (async () => {
    while (waiting && acknowledged < registrations) {
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const depths = await Promise.all(queues.map(({ queueUrl }) => queueDepth(options.sqs, queueUrl).catch(() => -1)));
      if (depths.every((depth) => depth === 0)) return;
    }
  })();
  let timedOut = false;
  await Promise.race([
    finished,
    drained,
    new Promise<void>((resolve) =>
      setTimeout(() => {
        timedOut = true;
        resolve();
      }, options.timeoutSeconds * 1000).unref(),
    ),
  ]);
  waiting = false;
  clearInterval(ticker);
  await drained;
  await Promise.all(pollers.map((poller) => poller.stop()));
  const seconds = ((timedOut ? performance.now() : lastAcknowledgedAt) - started) / 1000;
  return { started, seconds, timedOut, acknowledged, returned };
}
