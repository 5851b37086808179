import { type AwsClients, createAwsClients, dynamoClient, dynamoStreamsClient } from '../aws/clients';
import type { EventFeed } from '../audit/event-feed';
import type { HistoryDeps } from '../audit/customer-history';
import type { Config } from '../config';
import type { TierChangeDeps } from '../customers/change-tier';
import type { RevocationDeps } from '../customers/revoke-customer';
import type { EnqueueDeps } from '../provisioning/enqueue-registration';
import type { WorkerDeps } from '../provisioning/provision-from-message';
import type { ProvisioningDeps } from '../provisioning/provision-key';
import type { ResumeDeps } from '../provisioning/resume-registrations';
import type { ReconcileDeps } from '../reconcile/ports';
import type { RotationDeps } from '../rotation/rotate-key';
import type { DrainDeps } from '../shards/drain-shard';
import type { FinishDeps } from '../sweep/finish-interrupted';
import type { UsageDeps } from '../usage/get-customer-usage';
import { customerDeps, type CustomerClients } from './customers';
import { enqueueDeps } from './enqueue';
import { eventFeed, type EventFeedClients } from './event-feed';
import { historyDeps } from './history';
import { provisioningDeps, type SagaClients, workerDeps } from './provisioning';
import { reconcileDeps } from './reconcile';
import { readDeps, type ReadDeps } from './reads';
import { sweepDeps } from './resume';
import { rotationDeps } from './rotation';
import { drainDeps } from './shards';
import { usageDeps } from './usage';

/*
 * Every use case's deps, for the CLI (cli/services.ts), the tests and the bench: the same builders
 * the functions' compositions use (functions/<name>/composition.ts), over the clients given, or
 * over all of them. A function never imports this module: it would bundle every client.
 *
 * Each call paces its own key gateway to the config's share of the management budget, through
 * paced views of the clients (shared/aws/management-budget.ts): the clients given are not changed,
 * so calls on them elsewhere are not paced.
 */

export function createProvisioningDeps(config: Config, clients: SagaClients = createAwsClients()): ProvisioningDeps {
  return provisioningDeps(config, clients);
}

/** The queue worker's: the saga, paced to the worker's share (its config's row of the budget). */
export function createWorkerDeps(config: Config, clients: SagaClients = createAwsClients()): WorkerDeps {
  return workerDeps(config, clients);
}

/** register's: the saga and the queue. @throws ConfigError without QUEUE_URL */
export function createEnqueueDeps(
  config: Config,
  clients: SagaClients & Pick<AwsClients, 'sqs'> = createAwsClients(),
): ProvisioningDeps & EnqueueDeps {
  return enqueueDeps(config, clients);
}

/** customerReads': a registration's status, a customer and its audit trail, read only. */
export function createReadDeps(config: Config, clients: Pick<AwsClients, 'dynamo'> = createAwsClients()): ReadDeps {
  return readDeps(config, clients);
}

export function createRotationDeps(config: Config, clients: SagaClients = createAwsClients()): RotationDeps {
  return rotationDeps(config, clients);
}

/** A customer's audit trail (the lifecycle events kept with it). */
export function createHistoryDeps(config: Config, clients: Pick<AwsClients, 'dynamo'> = createAwsClients()): HistoryDeps {
  return historyDeps(config, clients);
}

/** Every customer's lifecycle events as they commit (the CLI's `events --follow`). */
export function createEventFeed(
  config: Config,
  clients: EventFeedClients = { dynamo: dynamoClient(), dynamoStreams: dynamoStreamsClient() },
): EventFeed {
  return eventFeed(config, clients);
}

export function createUsageDeps(config: Config, clients: CustomerClients = createAwsClients()): UsageDeps {
  return usageDeps(config, clients);
}

export function createCustomerDeps(
  config: Config,
  clients: CustomerClients = createAwsClients(),
): TierChangeDeps & RevocationDeps {
  return customerDeps(config, clients);
}

export function createReconcileDeps(config: Config, clients: CustomerClients = createAwsClients()): ReconcileDeps {
  return reconcileDeps(config, clients);
}

/** The whole sweep (both of its functions' halves), over one gateway. */
export function createResumeDeps(config: Config, clients: SagaClients = createAwsClients()): ResumeDeps & FinishDeps {
  return sweepDeps(config, clients);
}

/** Shard drains (the CLI's `shards drain`) and the shard report. */
export function createDrainDeps(config: Config, clients: SagaClients = createAwsClients()): DrainDeps {
  return drainDeps(config, clients);
}
