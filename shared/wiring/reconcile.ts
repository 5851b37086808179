import { ApiKeyInventory } from '../aws/api-key-inventory';
import { CustomerLedgerTable } from '../aws/customer-ledger';
import { KeyRecordsTable } from '../aws/key-records-table';
import { RegistrationReads } from '../aws/registration-reads';
import type { CoreConfig } from '../config';
import type { ReconcileDeps } from '../reconcile/ports';
import type { CustomerClients } from './customers';
import { shardKeyGateways } from './key-gateway';
import { clock, reconcileSettings } from './settings';

/**
 * The reconciler: API Gateway's listing against the key items, repairs under the customer's lease.
 * Paced like the other jobs: on a large account its listing and repairs are many management calls.
 * It creates no key, so it has no single-attempt client.
 */
export function reconcileDeps(config: CoreConfig, clients: CustomerClients): ReconcileDeps {
  return {
    inventory: shardKeyGateways(config, { apiGateway: clients.apiGateway }, ApiKeyInventory),
    records: new KeyRecordsTable({ client: clients.dynamo, tableName: config.tableName }),
    ledger: new CustomerLedgerTable({ client: clients.dynamo, tableName: config.tableName }),
    registrations: new RegistrationReads({ client: clients.dynamo, tableName: config.tableName }),
    clock,
    settings: reconcileSettings(config),
  };
}
