import type { AwsClients } from '../aws/clients';
import { RegistrationReads } from '../aws/registration-reads';
import type { HistoryDeps } from '../audit/customer-history';
import type { CoreConfig } from '../config';
import type { RegistrationStore } from '../core/ports';
import { historyDeps } from './history';

/** What the read routes need of the registration store: two reads, none of the saga's writes. */
export interface ReadDeps extends HistoryDeps {
  store: Pick<RegistrationStore, 'getRegistration' | 'getCustomer'>;
}

/**
 * The read routes (a registration's status, a customer, its audit trail): the table read only,
 * over DynamoDB alone, so their function bundles none of the saga.
 */
export function readDeps(config: Pick<CoreConfig, 'tableName'>, clients: Pick<AwsClients, 'dynamo'>): ReadDeps {
  return {
    store: new RegistrationReads({ client: clients.dynamo, tableName: config.tableName }),
    ...historyDeps(config, clients),
  };
}
