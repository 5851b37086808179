import { ApiKeyGateway } from '../aws/api-key-gateway';
import type { AwsClients } from '../aws/clients';
import { CustomerLedgerTable } from '../aws/customer-ledger';
import type { CoreConfig } from '../config';
import type { TierChangeDeps } from '../customers/change-tier';
import type { RevocationDeps } from '../customers/revoke-customer';
import { shardKeyGateways } from './key-gateway';
import { clock, revocationSettings, tierChangeSettings } from './settings';

/** Tier changes and revocations create no key: API Gateway's retrying client and DynamoDB only. */
export type CustomerClients = Pick<AwsClients, 'apiGateway' | 'dynamo'>;

/**
 * The key gateway and the customer record (its lease and writes). Paced like the worker: a burst
 * of billing events is as many management calls as an import.
 */
function customerAdapters(config: CoreConfig, clients: CustomerClients) {
  return {
    keys: shardKeyGateways(config, { apiGateway: clients.apiGateway }, ApiKeyGateway),
    ledger: new CustomerLedgerTable({ client: clients.dynamo, tableName: config.tableName }),
    clock,
  };
}

export function tierChangeDeps(config: CoreConfig, clients: CustomerClients): TierChangeDeps {
  return { ...customerAdapters(config, clients), settings: tierChangeSettings(config) };
}

export function revocationDeps(config: CoreConfig, clients: CustomerClients): RevocationDeps {
  return { ...customerAdapters(config, clients), settings: revocationSettings(config) };
}

/** Both over one gateway and ledger: the CLI's customer commands. */
export function customerDeps(config: CoreConfig, clients: CustomerClients): TierChangeDeps & RevocationDeps {
  return { ...customerAdapters(config, clients), settings: { ...tierChangeSettings(config), ...revocationSettings(config) } };
}
