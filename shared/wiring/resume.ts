import { CustomerLedgerTable } from '../aws/customer-ledger';
import { KeyTable } from '../aws/key-table';
import { RegistrationTable } from '../aws/registration-table';
import { SesMailer } from '../aws/ses-mailer';
import type { CoreConfig } from '../config';
import type { ResumeDeps } from '../provisioning/resume-registrations';
import type { FinishDeps } from '../sweep/finish-interrupted';
import { shardKeyGateways } from './key-gateway';
import type { SagaClients } from './provisioning';
import { clock, mailerOptions, provisioningSettings, registrationTableOptions, rotationSettings } from './settings';

/**
 * The sweep: the saga over the registrations nobody finished, and every operation that died
 * holding a must-finish lease (a rotation, a tier change, a revocation), over one paced gateway.
 */
export function resumeDeps(config: CoreConfig, clients: SagaClients): ResumeDeps & FinishDeps {
  const registrations = new RegistrationTable({ client: clients.dynamo, ...registrationTableOptions(config) });
  return {
    store: registrations,
    stalled: registrations,
    keys: shardKeyGateways(config, clients),
    mailer: new SesMailer({ client: clients.ses, ...mailerOptions(config) }),
    ledger: new CustomerLedgerTable({ client: clients.dynamo, tableName: config.tableName }),
    keyStore: new KeyTable({ client: clients.dynamo, tableName: config.tableName }),
    clock,
    settings: { ...rotationSettings(config), ...provisioningSettings(config) },
  };
}
