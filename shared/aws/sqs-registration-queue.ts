import { type SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { ProvisioningMessage, RegistrationQueue } from '../provisioning/ports';
import { TransientAwsError } from '../errors';
import { awsErrorName, isTransient } from './aws-errors';

export class SqsRegistrationQueue implements RegistrationQueue {
  readonly #client: SQSClient;
  readonly #queueUrl: string;

  constructor(options: { client: SQSClient; queueUrl: string }) {
    this.#client = options.client;
    this.#queueUrl = options.queueUrl;
  }

  async send(message: ProvisioningMessage): Promise<void> {
    try {
      await this.#client.send(new SendMessageCommand({ QueueUrl: this.#queueUrl, MessageBody: JSON.stringify(message) }));
    } catch (error) {
      throw isTransient(error)
        ? new TransientAwsError(`SQS is unavailable: ${awsErrorName(error)}`, 2, { cause: error })
        : error;
    }
  }
}
