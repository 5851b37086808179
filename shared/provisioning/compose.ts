import { ApiKeyGateway } from '../aws/api-key-gateway';
import { type AwsClients, createAwsClients } from '../aws/clients';
import { paceManagementCalls, TokenBucket } from '../aws/management-budget';
import { RegistrationTable } from '../aws/registration-table';
import { SesMailer } from '../aws/ses-mailer';
import { SqsRegistrationQueue } from '../aws/sqs-registration-queue';
import { type Config, ConfigError } from '../config';
import { KeyTable } from '../aws/key-table';
import { CustomerLedgerTable } from '../aws/customer-ledger';
import type { TierChangeDeps } from '../customers/change-tier';
import type { RevocationDeps } from '../customers/revoke-customer';
import type { ReconcileDeps } from '../reconcile/ports';
import type { RotationDeps } from '../rotation/rotate-key';
import type { UsageDeps } from '../usage/get-customer-usage';
import type { EnqueueDeps } from './enqueue-registration';
import type { ProvisioningDeps } from './provision-key';
import type { ResumeDeps } from './resume-registrations';
import type { FinishDeps } from '../sweep/finish-interrupted';

/** Leases are times of the clock, never of a request's or a schedule event's time. */
const clock = () => new Date();

/** How often the sweep runs (serverless.yml's resume schedule): a blocked customer's wait, at worst. */
const sweepSeconds = (config: Config) => config.sweepMinutes * 60;

const ledgerOf = (config: Config, clients: AwsClients) =>
  new CustomerLedgerTable({ client: clients.dynamo, tableName: config.tableName });

const registrationTable = (config: Config, clients: AwsClients) =>
  new RegistrationTable({
    client: clients.dynamo,
    tableName: config.tableName,
    retentionDays: config.registrationRetentionDays,
    resumeAfterSeconds: config.resumeAfterMinutes * 60,
  });

/** Wires the saga's adapters to AWS clients; handlers call this once, at cold start. */
export function createProvisioningDeps(config: Config, clients: AwsClients = createAwsClients()): ProvisioningDeps {
  paceToShareOfBudget(config, clients);
  return {
    store: registrationTable(config, clients),
    keys: new ApiKeyGateway({ client: clients.apiGateway, singleAttemptClient: clients.apiGatewaySingleAttempt }),
    mailer: new SesMailer({
      client: clients.ses,
      sender: config.senderEmail,
      configurationSet: config.sesConfigurationSet,
    }),
    ledger: ledgerOf(config, clients),
    clock,
    settings: {
      tierMap: config.tierMap,
      keyNamePrefix: config.keyNamePrefix,
      stage: config.stage,
      rotationDays: config.rotationDays,
      leaseSeconds: config.leaseSeconds,
      sweepSeconds: sweepSeconds(config),
    },
  };
}

/** The saga plus the queue, for the paths that accept registrations asynchronously. */
export function createEnqueueDeps(
  config: Config,
  clients: AwsClients = createAwsClients(),
): ProvisioningDeps & EnqueueDeps {
  if (!config.queueUrl) throw new ConfigError('keyplan configuration is invalid: QUEUE_URL is not set');
  return {
    ...createProvisioningDeps(config, clients),
    queue: new SqsRegistrationQueue({ client: clients.sqs, queueUrl: config.queueUrl }),
  };
}

/**
 * Paces the clients' API Gateway calls to one container's part of this function's share of the
 * account's management budget: share / the function's concurrency cap, with the function's burst
 * (infra/serverless/management-budget.js splits the budget; the config carries this function's
 * row). Clients already paced keep their bucket, so the factories below may each call this.
 */
function paceToShareOfBudget(config: Config, clients: AwsClients): void {
  paceManagementCalls(
    [clients.apiGateway, clients.apiGatewaySingleAttempt],
    new TokenBucket(config.managementSharePerSecond / config.managementConcurrency, config.managementBurst),
  );
}

/** The saga for the queue worker, paced to its share of the management budget. */
export function createWorkerDeps(config: Config, clients: AwsClients = createAwsClients()): ProvisioningDeps {
  paceToShareOfBudget(config, clients);
  return createProvisioningDeps(config, clients);
}

/**
 * The rotation and retirement jobs: the saga's adapters plus the key items of the table. A run
 * over a large batch makes as many management calls as a bulk import, so it is paced the same way.
 */
export function createRotationDeps(config: Config, clients: AwsClients = createAwsClients()): RotationDeps {
  paceToShareOfBudget(config, clients);
  const provisioning = createProvisioningDeps(config, clients);
  return {
    keys: provisioning.keys,
    store: provisioning.store,
    mailer: provisioning.mailer,
    keyStore: new KeyTable({ client: clients.dynamo, tableName: config.tableName }),
    ledger: ledgerOf(config, clients),
    clock,
    settings: {
      tierMap: config.tierMap,
      keyNamePrefix: config.keyNamePrefix,
      stage: config.stage,
      rotationDays: config.rotationDays,
      graceDays: config.graceDays,
      reminderDays: config.reminderDays,
      keyRetentionDays: config.keyRetentionDays,
      leaseSeconds: config.leaseSeconds,
      sweepSeconds: sweepSeconds(config),
    },
  };
}

/**
 * The usage route: the key items and API Gateway's usage. GetUsage is a management call (one per
 * live key), so the route is paced to its share like every other function.
 */
export function createUsageDeps(config: Config, clients: AwsClients = createAwsClients()): UsageDeps {
  paceToShareOfBudget(config, clients);
  return {
    keys: new ApiKeyGateway({ client: clients.apiGateway, singleAttemptClient: clients.apiGatewaySingleAttempt }),
    keyStore: new KeyTable({ client: clients.dynamo, tableName: config.tableName }),
  };
}

/**
 * Tier changes and revocations: the key gateway and the customer record (its lease and writes).
 * Paced like the worker: a burst of billing events is as many management calls as an import.
 */
export function createCustomerDeps(config: Config, clients: AwsClients = createAwsClients()): TierChangeDeps & RevocationDeps {
  paceToShareOfBudget(config, clients);
  return {
    keys: new ApiKeyGateway({ client: clients.apiGateway, singleAttemptClient: clients.apiGatewaySingleAttempt }),
    ledger: ledgerOf(config, clients),
    clock,
    settings: {
      tierMap: config.tierMap,
      leaseSeconds: config.leaseSeconds,
      keyRetentionDays: config.keyRetentionDays,
      sweepSeconds: sweepSeconds(config),
    },
  };
}

/**
 * The reconciler: API Gateway's listing against the key items, repairs under the customer's lease.
 * Paced like the other jobs: on a large account its listing and repairs are many management calls.
 */
export function createReconcileDeps(config: Config, clients: AwsClients = createAwsClients()): ReconcileDeps {
  paceToShareOfBudget(config, clients);
  return {
    inventory: new ApiKeyGateway({ client: clients.apiGateway, singleAttemptClient: clients.apiGatewaySingleAttempt }),
    records: new KeyTable({ client: clients.dynamo, tableName: config.tableName }),
    ledger: ledgerOf(config, clients),
    registrations: registrationTable(config, clients),
    clock,
    settings: {
      keyNamePrefix: config.keyNamePrefix,
      stage: config.stage,
      tierMap: config.tierMap,
      minKeyAgeMinutes: config.reconcileMinKeyAgeMinutes,
      leaseSeconds: config.leaseSeconds,
      sweepSeconds: sweepSeconds(config),
    },
  };
}

/** The resume sweep: the saga over the registrations nobody finished, paced like the worker. */
export function createResumeDeps(config: Config, clients: AwsClients = createAwsClients()): ResumeDeps & FinishDeps {
  const rotation = createRotationDeps(config, clients);
  const worker = createWorkerDeps(config, clients);
  return { ...rotation, ...worker, settings: { ...rotation.settings, ...worker.settings }, stalled: registrationTable(config, clients) };
}
