import type { AwsClients } from '../aws/clients';
import { SqsRegistrationQueue } from '../aws/sqs-registration-queue';
import type { EnqueueConfig } from '../config';
import type { EnqueueDeps } from '../provisioning/enqueue-registration';
import type { ProvisioningDeps } from '../provisioning/provision-key';
import { provisioningDeps, type SagaClients } from './provisioning';
import { queueUrlOf } from './settings';

/**
 * The saga plus the queues (the home shard's, and each other shard's own), for the paths that also
 * accept registrations asynchronously (register, the import). @throws ConfigError without QUEUE_URL
 */
export function enqueueDeps(config: EnqueueConfig, clients: SagaClients & Pick<AwsClients, 'sqs'>): ProvisioningDeps & EnqueueDeps {
  const queueUrl = queueUrlOf(config);
  return {
    ...provisioningDeps(config, clients),
    queue: new SqsRegistrationQueue({ client: clients.sqs, queueUrl, shardQueueUrls: config.shardQueueUrls }),
  };
}
