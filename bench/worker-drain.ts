// The worker side of the queue figures (throughput, scale-out): the deployed worker's handler
// modules, one per container, each polling its queue (a queue trigger's containers; scale-out has
// one queue per shard) until every registration was acknowledged, every queue is empty (a message
// that ends in the DLQ is never acknowledged), or time runs out.
import { performance } from 'node:perf_hooks';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type ReceiveMessageCommandOutput, type SQSClient } from '@aws-sdk/client-sqs';
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
  /** Where each container's time went: in the handler, or between batches (delete, receive). */
  timing: { containers: number; batches: number; handlerSeconds: number; betweenSeconds: number; meanBatchSeconds: number; meanBetweenSeconds: number };
}

/** Polls each queue with one poller per handler (a container each) until they are worked off. */
export async function drainWithWorkers(options: DrainOptions): Promise<Drained> {
  const { registrations, queues } = options;
  let acknowledged = 0;
  let returned = 0;
  let lastAcknowledgedAt = 0;
  let allAcknowledged: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (allAcknowledged = resolve));
  let batches = 0;
  let handlerMs = 0;
  let betweenMs = 0;
  const counted = (handler: WorkerHandler): WorkerHandler => {
    let lastEnd: number | undefined;
    return async (event, context) => {
      const begin = performance.now();
      if (lastEnd !== undefined) betweenMs += begin - lastEnd;
      const response = await handler(event, context);
      lastEnd = performance.now();
      handlerMs += lastEnd - begin;
      batches++;
      const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
      const now = performance.now();
      options.onBatch?.(event, failed, now);
      acknowledged += event.Records.length - failed.size;
      returned += failed.size;
      lastAcknowledgedAt = now;
      if (acknowledged >= registrations) allAcknowledged();
      return response;
    };
  };

  const started = performance.now();
  const feeds = queues.map(() => new QueueFeed(createAwsClients().sqs));
  const pollers = queues.flatMap(({ queueUrl, handlers }, index) =>
    handlers.map((handler) =>
      startQueuePoller({ sqs: feeds[index]!.client, queueUrl, handler: counted(handler), concurrency: 1, region: options.region }),
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
  await Promise.all(feeds.map((feed) => feed.settle()));
  const seconds = ((timedOut ? performance.now() : lastAcknowledgedAt) - started) / 1000;
  const containers = queues.reduce((sum, queue) => sum + queue.handlers.length, 0);
  const timing = {
    containers,
    batches,
    handlerSeconds: handlerMs / 1000,
    betweenSeconds: betweenMs / 1000,
    meanBatchSeconds: batches > 0 ? handlerMs / 1000 / batches : 0,
    meanBetweenSeconds: batches > containers ? betweenMs / 1000 / (batches - containers) : 0,
  };
  return { started, seconds, timedOut, acknowledged, returned, timing };
}

/**
 * A queue's side of Lambda's SQS event source mapping, shared by the queue's containers: its
 * pollers receive the next batch while the containers work (one batch held at a time, handed to
 * whichever container is free first), and delete what a container acknowledged without holding it
 * up. Without it each container waited, between batches, for a delete and a receive of its own: two
 * round trips that Lambda does not spend in the function's concurrency, 0.46 s a batch at figure
 * 7's three shards, where the emulator is busy.
 */
class QueueFeed {
  readonly client: SQSClient;
  #held: Promise<ReceiveMessageCommandOutput> | undefined;
  readonly #deleting = new Set<Promise<unknown>>();

  constructor(sqs: SQSClient) {
    const send = (command: unknown): Promise<unknown> => {
      if (command instanceof ReceiveMessageCommand) return this.#receive(sqs, command);
      if (command instanceof DeleteMessageBatchCommand) {
        const deleting = sqs.send(command).catch((error: unknown) => {
          // Left in the queue, the messages come back and are worked again (idempotently).
          progress(`delete failed: ${error instanceof Error ? error.message : String(error)}`);
        });
        this.#deleting.add(deleting);
        void deleting.finally(() => this.#deleting.delete(deleting));
        return Promise.resolve({});
      }
      return sqs.send(command as never);
    };
    this.client = { send } as unknown as SQSClient;
  }

  async #receive(sqs: SQSClient, command: ReceiveMessageCommand): Promise<ReceiveMessageCommandOutput> {
    const answer = this.#held ?? sqs.send(command);
    this.#held = undefined;
    const result = await answer;
    if ((result.Messages?.length ?? 0) > 0 && !this.#held) {
      const next = sqs.send(new ReceiveMessageCommand(command.input));
      // Awaited by the container that takes it; a poll left untaken when the drain ends fails unseen.
      next.catch(() => undefined);
      this.#held = next;
    }
    return result;
  }

  /** Waits for the deletes still under way. */
  async settle(): Promise<void> {
    await Promise.all([...this.#deleting]);
  }
}
