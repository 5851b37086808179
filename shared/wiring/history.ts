import type { AwsClients } from '../aws/clients';
import { EventHistoryTable } from '../aws/event-history-table';
import type { HistoryDeps } from '../audit/customer-history';
import type { Config } from '../config';

/** The audit trail: the customer's event items in the table, read only (DynamoDB alone). */
export function historyDeps(config: Config, clients: Pick<AwsClients, 'dynamo'>): HistoryDeps {
  return { history: new EventHistoryTable({ client: clients.dynamo, tableName: config.tableName }) };
}
