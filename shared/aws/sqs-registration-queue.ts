import { type SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { ProvisioningMessage, RegistrationQueue } from '../provisioning/ports';
import { TransientAwsError } from '../errors';
import { awsErrorName, isTransient } from './aws-errors';

export interface SqsRegistrationQueueOptions {
  client: SQSClient;
  /** The home shard's queue, and that of every shard without one of its own. */
  queueUrl: string;
  /** shard id -> its own queue (config QUEUE_URLS); none: every shard's messages go to queueUrl. */
  shardQueueUrls?: Readonly<Record<string, string>> | undefined;
}

export class SqsRegistrationQueue implements RegistrationQueue {
  readonly #client: SQSClient;
  readonly #queueUrl: string;
  readonly #shardQueueUrls: Readonly<Record<string, string>>;

  constructor(options: SqsRegistrationQueueOptions) {
    this.#client = options.client;
    this.#queueUrl = options.queueUrl;
    this.#shardQueueUrls = options.shardQueueUrls ?? {};
  }

  /** The queue of `shard`: its own, else the home queue. Own keys only, as for the tier map. */
  queueUrlOf(shard: string | undefined): string {
    return shard !== undefined && Object.hasOwn(this.#shardQueueUrls, shard) ? this.#shardQueueUrls[shard]! : this.#queueUrl;
  }

  async send(message: ProvisioningMessage, shard: string | undefined): Promise<void> {
    try {
      await this.#client.send(new SendMessageCommand({ QueueUrl: this.queueUrlOf(shard), MessageBody: JSON.stringify(message) }));
    } catch (error) {
      throw isTransient(error)
        ? new TransientAwsError(`SQS is unavailable: ${awsErrorName(error)}`, 2, { cause: error })
        : error;
    }
  }
}
