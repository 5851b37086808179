import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { localLambdaContext } from './lambda-context';

const WORKER_TIMEOUT_MS = 60_000;

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface QueuePollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  handler: SqsHandler;
  /** Parallel batches, like the trigger's MaximumConcurrency. */
  concurrency?: number;
  /** Records per batch, like the trigger's BatchSize (SQS hands out at most 10 at once). Default 10. */
  batchSize?: number;
  /** How soon a failed message is visible again; locally shorter than the queue's timeout. */
  retryDelaySeconds?: number;
  region?: string;
  log?: (line: string) => void;
}

export interface QueuePoller {
  stop(): Promise<void>;
}

/**
 * Stands in for Lambda's SQS event source mapping: receives batches, invokes the worker handler,
 * deletes what succeeded and returns each reported failure to the queue after a short delay.
 * The queue's own redrive policy moves a message that keeps failing to the DLQ, as in AWS.
 */
export function startQueuePoller(options: QueuePollerOptions): QueuePoller {
  const { sqs, queueUrl, handler } = options;
  const retryDelaySeconds = options.retryDelaySeconds ?? 2;
  const region = options.region ?? 'us-east-1';
  const queueArn = arnOf(queueUrl, region);
  let running = true;
  let invocation = 0;

  const pollOnce = async (): Promise<void> => {
    const { Messages: messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(10, options.batchSize ?? 10),
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    if (messages.length === 0) return;
    const event: SQSEvent = { Records: messages.map((message) => toRecord(message, queueArn, region)) };
    let failed: Set<string>;
    try {
      const response = await handler(event, localLambdaContext('provision-worker', `local-worker-${++invocation}`, WORKER_TIMEOUT_MS));
      failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    } catch (error) {
      options.log?.(`worker failed the whole batch: ${error instanceof Error ? error.message : String(error)}`);
      failed = new Set(messages.map((message) => message.MessageId ?? ''));
    }
    const done = messages.filter((message) => !failed.has(message.MessageId ?? ''));
    const retry = messages.filter((message) => failed.has(message.MessageId ?? ''));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
    }
    if (retry.length > 0) {
      await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: retry.map((message, i) => ({
            Id: String(i),
            ReceiptHandle: message.ReceiptHandle,
            VisibilityTimeout: retryDelaySeconds,
          })),
        }),
      );
    }
    options.log?.(`queue: ${done.length} done, ${retry.length} back to the queue`);
  };

  const loop = async (): Promise<void> => {
    while (running) {
      try {
        await pollOnce();
      } catch (error) {
        options.log?.(`queue poll failed: ${error instanceof Error ? error.message : String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  const loops = Array.from({ length: options.concurrency ?? 2 }, loop);

  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** http://host/123456789012/name -> arn:aws:sqs:region:123456789012:name */
function arnOf(queueUrl: string, region: string): string {
  const [account = '000000000000', name = 'queue'] = new URL(queueUrl).pathname.split('/').filter(Boolean);
  return `arn:aws:sqs:${region}:${account}:${name}`;
}
