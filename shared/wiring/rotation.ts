import { ApiKeyGateway } from '../aws/api-key-gateway';
import { CustomerLedgerTable } from '../aws/customer-ledger';
import { KeyTable } from '../aws/key-table';
import { CustomerReads } from '../aws/registration-reads';
import { SesMailer } from '../aws/ses-mailer';
import type { CoreConfig } from '../config';
import type { RotationDeps } from '../rotation/rotate-key';
import { shardKeyGateways } from './key-gateway';
import type { SagaClients } from './provisioning';
import { clock, mailerOptions, rotationSettings } from './settings';

/**
 * Rotation and retirement (scheduled and on demand): the saga's adapters plus the key items. A run
 * over a large batch makes as many management calls as a bulk import, so it is paced the same way.
 */
export function rotationDeps(config: CoreConfig, clients: SagaClients): RotationDeps {
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
