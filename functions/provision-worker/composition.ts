import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import { workerDeps } from '../../shared/wiring/provisioning';
import { provisioningBatchHandler } from './batch';

/**
 * The queue worker's composition root: the saga over both API Gateway clients, DynamoDB and SES,
 * paced to the worker's share of the management budget. Called once per container, at cold start.
 */
export function composeProvisionWorker(config: CoreConfig = loadCoreConfig()) {
  const clients = { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() };
  return provisioningBatchHandler(workerDeps(config, clients));
}
