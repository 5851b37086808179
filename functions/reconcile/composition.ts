import { apiGatewayClient, dynamoClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';
import { reconcileDeps } from '../../shared/wiring/reconcile';

/**
 * The reconciler's composition root: API Gateway (it creates no key: no single-attempt client) and
 * DynamoDB. Called once per container, at cold start.
 */
export function composeReconcile(config: CoreConfig = loadCoreConfig()) {
  const deps = reconcileDeps(config, { apiGateway: apiGatewayClient(), dynamo: dynamoClient() });
  return (options: { now: Date; dryRun: boolean }) => reconcileKeys(options, deps);
}
