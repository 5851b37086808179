import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import type { Route } from '../../shared/http/handler';
import { rotationDeps } from '../../shared/wiring/rotation';
import { rotateCustomerRoutes } from './routes';

/**
 * The on-demand rotation's composition root: rotation over both API Gateway clients, DynamoDB and
 * SES. Called once per container, at cold start.
 */
export function composeRotateCustomer(config: CoreConfig = loadCoreConfig()): Route {
  return rotateCustomerRoutes(rotationDeps(config, { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() }));
}
