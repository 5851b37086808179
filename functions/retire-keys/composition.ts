import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import { retireDueKeys } from '../../shared/rotation/rotation-jobs';
import { rotationDeps } from '../../shared/wiring/rotation';

/**
 * The scheduled retirement's composition root: rotation's deps (retirement disables and deletes
 * keys and emails reminders: API Gateway, DynamoDB, SES), one run handling at most
 * RETIREMENT_BATCH_SIZE keys per step. Called once per container, at cold start.
 */
export function composeRetireKeys(config: CoreConfig = loadCoreConfig()) {
  const deps = rotationDeps(config, { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() });
  return (now: Date) => retireDueKeys(now, config.retirementBatchSize, deps);
}
