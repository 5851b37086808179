import { apiGatewayClient, dynamoClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import type { Route } from '../../shared/http/handler';
import { revocationDeps } from '../../shared/wiring/customers';
import { revokeCustomerRoutes } from './routes';

/**
 * The revocation route's composition root: API Gateway (no key is created: no single-attempt
 * client) and DynamoDB. Called once per container, at cold start.
 */
export function composeRevokeCustomer(config: CoreConfig = loadCoreConfig()): Route {
  return revokeCustomerRoutes(revocationDeps(config, { apiGateway: apiGatewayClient(), dynamo: dynamoClient() }));
}
