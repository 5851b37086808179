import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { type AwsClients, createAwsClients, dynamoStreamsClient } from '../shared/aws/clients';
import type { EventFeed } from '../shared/audit/event-feed';
import type { HistoryDeps } from '../shared/audit/customer-history';
import type { Config } from '../shared/config';
import type { TierChangeDeps } from '../shared/customers/change-tier';
import type { RevocationDeps } from '../shared/customers/revoke-customer';
import {
  createCustomerDeps,
  createEnqueueDeps,
  createEventFeed,
  createHistoryDeps,
  createProvisioningDeps,
  createReconcileDeps,
  createResumeDeps,
  createRotationDeps,
  createDrainDeps,
  createUsageDeps,
} from '../shared/wiring/compose';
import type { EnqueueDeps } from '../shared/provisioning/enqueue-registration';
import type { ProvisioningDeps } from '../shared/provisioning/provision-key';
import type { ResumeDeps } from '../shared/provisioning/resume-registrations';
import type { ReconcileDeps } from '../shared/reconcile/ports';
import type { RotationDeps } from '../shared/rotation/rotate-key';
import type { UsageDeps } from '../shared/usage/get-customer-usage';
import type { DrainDeps } from '../shared/shards/drain-shard';
import type { FinishDeps } from '../shared/sweep/finish-interrupted';
import { type ConsoleDeps, consoleDeps } from '../shared/wiring/console';
import { type FunctionInvoker, LambdaFunctionInvoker } from './function-invoker';

/**
 * The use cases' dependencies, built by the same builders (shared/wiring/) as the Lambda functions',
 * so a command and its function behave alike: the same adapters, the same pacing of API Gateway
 * calls. Commands ask only for what they use; tests substitute fakes.
 */
export interface Services {
  provisioning(): ProvisioningDeps;
  /** @throws ConfigError without QUEUE_URL */
  enqueue(): EnqueueDeps;
  rotation(): RotationDeps;
  customers(): TierChangeDeps & RevocationDeps;
  usage(): UsageDeps;
  /** A customer's audit trail. */
  history(): HistoryDeps;
  /** Every customer's lifecycle events as they commit: the table's stream. */
  eventFeed(): EventFeed;
  reconcile(): ReconcileDeps;
  /** Shard drains and the shard report; the scheduled rotation (which continues drains). */
  shards(): DrainDeps;
  /** The sweep: stalled registrations and interrupted operations. */
  resume(): ResumeDeps & FinishDeps;
  /** A deployed stage's functions, run through Lambda (`jobs run --stage`). */
  functions(): FunctionInvoker;
  /** The web console's reads (`keyplan console`); its actions use the deps above. */
  console(): ConsoleDeps;
  /** Idle keep-alive sockets would otherwise hold the process open after the output. */
  close(): void;
}

export function awsServices(config: Config): Services {
  // One set of clients, built on first use: each use case's deps pace their own views of them and
  // leave the clients unchanged.
  let made: AwsClients | undefined;
  const clients = () => (made ??= createAwsClients());
  // Only `events` reads the stream: its client is not one of every command's.
  let streams: DynamoDBStreamsClient | undefined;
  // Only `jobs run --stage` invokes a function. No retries: a throttled invoke means a run is on
  // (one at a time), and a failed one is the function's answer, not the network's.
  let lambda: LambdaClient | undefined;
  return {
    provisioning: () => createProvisioningDeps(config, clients()),
    enqueue: () => createEnqueueDeps(config, clients()),
    rotation: () => createRotationDeps(config, clients()),
    customers: () => createCustomerDeps(config, clients()),
    usage: () => createUsageDeps(config, clients()),
    history: () => createHistoryDeps(config, clients()),
    eventFeed: () => createEventFeed(config, { dynamo: clients().dynamo, dynamoStreams: (streams ??= dynamoStreamsClient()) }),
    reconcile: () => createReconcileDeps(config, clients()),
    shards: () => createDrainDeps(config, clients()),
    resume: () => createResumeDeps(config, clients()),
    functions: () => new LambdaFunctionInvoker((lambda ??= new LambdaClient({ maxAttempts: 1 }))),
    console: () => consoleDeps(config, clients()),
    close: () => {
      for (const client of Object.values(made ?? {})) client.destroy();
      streams?.destroy();
      lambda?.destroy();
    },
  };
}
