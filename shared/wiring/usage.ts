import { KeyUsageGateway } from '../aws/api-key-gateway';
import { KeyTable } from '../aws/key-table';
import type { CoreConfig } from '../config';
import type { UsageDeps } from '../usage/get-customer-usage';
import type { CustomerClients } from './customers';
import { shardKeyGateways } from './key-gateway';

/**
 * The usage route: the key items and API Gateway's usage. GetUsage is a management call (one per
 * live key), so the route is paced to its share like every other function.
 */
export function usageDeps(config: CoreConfig, clients: CustomerClients): UsageDeps {
  return {
    keys: shardKeyGateways(config, { apiGateway: clients.apiGateway }, KeyUsageGateway),
    keyStore: new KeyTable({ client: clients.dynamo, tableName: config.tableName }),
  };
}
