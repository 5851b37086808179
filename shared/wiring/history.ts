import type { AwsClients } from '../aws/clients';
import { EventHistoryTable } from '../aws/event-history-table';
import type { HistoryDeps } from '../audit/customer-history';
import type { CoreConfig } from '../config';

/** The audit trail: the customer's event items in the table, read only (DynamoDB alone). */
export function historyDeps(config: Pick<CoreConfig, 'tableName'>, clients: Pick<AwsClients, 'dynamo'>): HistoryDeps {
  return { history: new EventHistoryTable({ client: clients.dynamo, tableName: config.tableName }) };
}
