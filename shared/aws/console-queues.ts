import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { QueueDepths } from '../console/ports';
import { TransientAwsError } from '../errors';
import { awsErrorName, isTransient } from './aws-errors';

/**
 * The provisioning queues' depth (GetQueueAttributes). Each queue's dead-letter queue is the one
 * its redrive policy names, so the configuration needs no DLQ setting: the console asks the queue
 * and finds the DLQ's URL by name once (GetQueueUrl).
 */
export class SqsQueueDepths implements QueueDepths {
  readonly #client: SQSClient;
  readonly #queueUrls: readonly string[];
  /** queue URL -> its DLQ's URL, or null for a queue without one. */
  readonly #dlqs = new Map<string, Promise<string | null>>();

  constructor(options: { client: SQSClient; queueUrls: readonly string[] }) {
    this.#client = options.client;
    this.#queueUrls = [...new Set(options.queueUrls)];
  }

  async depths(): Promise<{ queue: number; dlq: number; queues: number }> {
    try {
      const perQueue = await Promise.all(
        this.#queueUrls.map(async (queueUrl) => {
          const attributes = await this.#attributes(queueUrl, ['ApproximateNumberOfMessages', 'RedrivePolicy']);
          const dlqUrl = await this.#dlqOf(queueUrl, attributes.RedrivePolicy);
          const dlq = dlqUrl ? await this.#attributes(dlqUrl, ['ApproximateNumberOfMessages']) : {};
          return { queue: Number(attributes.ApproximateNumberOfMessages ?? 0), dlq: Number(dlq.ApproximateNumberOfMessages ?? 0) };
        }),
      );
      return {
        queue: perQueue.reduce((sum, depth) => sum + depth.queue, 0),
        dlq: perQueue.reduce((sum, depth) => sum + depth.dlq, 0),
        queues: perQueue.length,
      };
    } catch (error) {
      throw isTransient(error) ? new TransientAwsError(`SQS is unavailable: ${awsErrorName(error)}`, 2, { cause: error }) : error;
    }
  }

  async #attributes(queueUrl: string, names: ('ApproximateNumberOfMessages' | 'RedrivePolicy')[]) {
    const { Attributes = {} } = await this.#client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: names }));
    return Attributes as Partial<Record<string, string>>;
  }

  #dlqOf(queueUrl: string, redrivePolicy: string | undefined): Promise<string | null> {
    let found = this.#dlqs.get(queueUrl);
    if (!found) {
      found = this.#findDlq(redrivePolicy);
      // A failed look-up is tried again next time rather than remembered.
      found.catch(() => this.#dlqs.delete(queueUrl));
      this.#dlqs.set(queueUrl, found);
    }
    return found;
  }

  async #findDlq(redrivePolicy: string | undefined): Promise<string | null> {
    const arn = redrivePolicy ? (JSON.parse(redrivePolicy) as { deadLetterTargetArn?: unknown }).deadLetterTargetArn : undefined;
    // arn:aws:sqs:<region>:<account>:<name>
    const [, , , , account, name] = typeof arn === 'string' ? arn.split(':') : [];
    if (!name) return null;
    const { QueueUrl } = await this.#client.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account || undefined }));
    return QueueUrl ?? null;
  }
}
