import { SagaKeyGateway } from '../aws/api-key-gateway';
import type { AwsClients } from '../aws/clients';
import { CustomerCommitTable } from '../aws/customer-ledger';
import { QueuedRegistrationTable, RegistrationSagaTable } from '../aws/registration-table';
import { SesMailer } from '../aws/ses-mailer';
import type { CoreConfig } from '../config';
import type { WorkerDeps } from '../provisioning/provision-from-message';
import type { ProvisioningDeps } from '../provisioning/provision-key';
import { shardKeyGateways } from './key-gateway';
import { clock, mailerOptions, provisioningSettings, registrationTableOptions } from './settings';

/** The clients the registration saga, rotation and the sweep need: API Gateway (both), DynamoDB, SES. */
export type SagaClients = Pick<AwsClients, 'apiGateway' | 'apiGatewaySingleAttempt' | 'dynamo' | 'ses'>;

/** The registration saga: register's synchronous path. */
export function provisioningDeps(config: CoreConfig, clients: SagaClients): ProvisioningDeps {
  return sagaDeps(config, clients, new RegistrationSagaTable({ client: clients.dynamo, ...registrationTableOptions(config) }));
}

/** The queue worker's: the saga's, over a store that can also fail a message's registration. */
export function workerDeps(config: CoreConfig, clients: SagaClients): WorkerDeps {
  return sagaDeps(config, clients, new QueuedRegistrationTable({ client: clients.dynamo, ...registrationTableOptions(config) }));
}

function sagaDeps<S extends ProvisioningDeps['store']>(config: CoreConfig, clients: SagaClients, store: S): ProvisioningDeps & { store: S } {
  return {
    store,
    keys: shardKeyGateways(config, clients, SagaKeyGateway),
    mailer: new SesMailer({ client: clients.ses, ...mailerOptions(config) }),
    ledger: new CustomerCommitTable({ client: clients.dynamo, tableName: config.tableName }),
    clock,
    settings: provisioningSettings(config),
  };
}
