import type { AwsClients } from '../aws/clients';
import { CustomerCommitTable } from '../aws/customer-ledger';
import { RegistrationSagaTable } from '../aws/registration-table';
import { SesMailer } from '../aws/ses-mailer';
import type { CoreConfig } from '../config';
import type { ProvisioningDeps } from '../provisioning/provision-key';
import { shardKeyGateways } from './key-gateway';
import { clock, mailerOptions, provisioningSettings, registrationTableOptions } from './settings';

/** The clients the registration saga, rotation and the sweep need: API Gateway (both), DynamoDB, SES. */
export type SagaClients = Pick<AwsClients, 'apiGateway' | 'apiGatewaySingleAttempt' | 'dynamo' | 'ses'>;

/** The registration saga: the queue worker's deps, and the part of register's it shares. */
export function provisioningDeps(config: CoreConfig, clients: SagaClients): ProvisioningDeps {
  return {
    store: new RegistrationSagaTable({ client: clients.dynamo, ...registrationTableOptions(config) }),
    keys: shardKeyGateways(config, clients),
    mailer: new SesMailer({ client: clients.ses, ...mailerOptions(config) }),
    ledger: new CustomerCommitTable({ client: clients.dynamo, tableName: config.tableName }),
    clock,
    settings: provisioningSettings(config),
  };
}
