import { apiGatewayClient, dynamoClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import { tierChangeDeps } from '../../shared/wiring/customers';
import { tierChangeBatchHandler } from './batch';

/**
 * The billing events' consumer's composition root: API Gateway (no key is created: no
 * single-attempt client) and DynamoDB. Called once per container, at cold start.
 */
export function composeChangeTierEvents(config: CoreConfig = loadCoreConfig()) {
  return tierChangeBatchHandler(tierChangeDeps(config, { apiGateway: apiGatewayClient(), dynamo: dynamoClient() }));
}
