import { apiGatewayClient, dynamoClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import type { Route } from '../../shared/http/handler';
import { tierChangeDeps } from '../../shared/wiring/customers';
import { changeTierRoutes } from './routes';

/**
 * The tier-change route's composition root: API Gateway (no key is created: no single-attempt
 * client) and DynamoDB. Called once per container, at cold start.
 */
export function composeChangeTier(config: CoreConfig = loadCoreConfig()): Route {
  return changeTierRoutes(tierChangeDeps(config, { apiGateway: apiGatewayClient(), dynamo: dynamoClient() }));
}
