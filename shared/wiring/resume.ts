import { ApiKeyGateway, SagaKeyGateway } from '../aws/api-key-gateway';
import { CustomerCommitTable, CustomerLedgerTable } from '../aws/customer-ledger';
import { KeyTable } from '../aws/key-table';
import { CustomerReads } from '../aws/registration-reads';
import { RegistrationTable } from '../aws/registration-table';
import { SesMailer } from '../aws/ses-mailer';
import type { CoreConfig } from '../config';
import type { ResumeDeps } from '../provisioning/resume-registrations';
import type { FinishDeps } from '../sweep/finish-interrupted';
import { shardKeyGateways } from './key-gateway';
import type { SagaClients } from './provisioning';
import { clock, mailerOptions, provisioningSettings, registrationTableOptions, rotationSettings } from './settings';

/**
 * The sweep's first half (resumeRegistrations): the saga over the registrations nobody finished,
 * with the registration table's queries of them. It commits a registration as the saga does, so
 * it takes the saga's commit, not the whole ledger.
 */
export function resumeDeps(config: CoreConfig, clients: SagaClients): ResumeDeps {
  const registrations = new RegistrationTable({ client: clients.dynamo, ...registrationTableOptions(config) });
  return {
    store: registrations,
    stalled: registrations,
    keys: shardKeyGateways(config, clients, SagaKeyGateway),
    mailer: new SesMailer({ client: clients.ses, ...mailerOptions(config) }),
    ledger: new CustomerCommitTable({ client: clients.dynamo, tableName: config.tableName }),
    clock,
    settings: provisioningSettings(config),
  };
}

/**
 * The sweep's second half (finishOperations): every operation that died holding a must-finish
 * lease (a rotation, a tier change or repair, a revocation), over the whole customer ledger. It
 * writes no registration: the customer read (a reminder's address) is all it takes of them.
 */
export function finishDeps(config: CoreConfig, clients: SagaClients): FinishDeps {
  return {
    keys: shardKeyGateways(config, clients, ApiKeyGateway),
    keyStore: new KeyTable({ client: clients.dynamo, tableName: config.tableName }),
    ledger: new CustomerLedgerTable({ client: clients.dynamo, tableName: config.tableName }),
    store: new CustomerReads({ client: clients.dynamo, tableName: config.tableName }),
    mailer: new SesMailer({ client: clients.ses, ...mailerOptions(config) }),
    clock,
    settings: rotationSettings(config),
  };
}

/**
 * Both halves over one paced gateway and the whole registration table and ledger, for `keyplan
 * jobs run resume-registrations` and the local stack, which run the whole sweep in one process as
 * the two functions do between them.
 */
export function sweepDeps(config: CoreConfig, clients: SagaClients): ResumeDeps & FinishDeps {
  const registrations = new RegistrationTable({ client: clients.dynamo, ...registrationTableOptions(config) });
  return {
    ...finishDeps(config, clients),
    store: registrations,
    stalled: registrations,
    settings: { ...rotationSettings(config), ...provisioningSettings(config) },
  };
}
