import { apiGatewayClient, dynamoClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import type { Route } from '../../shared/http/handler';
import { usageDeps } from '../../shared/wiring/usage';
import { customerUsageRoutes } from './routes';

/**
 * The usage route's composition root: API Gateway's GetUsage (no single-attempt client) and the
 * key items in DynamoDB. Called once per container, at cold start.
 */
export function composeCustomerUsage(config: CoreConfig = loadCoreConfig()): Route {
  return customerUsageRoutes(usageDeps(config, { apiGateway: apiGatewayClient(), dynamo: dynamoClient() }));
}
