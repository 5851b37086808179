import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import { rotationDeps } from '../../shared/wiring/rotation';

/**
 * The scheduled rotation's composition root: rotation over both API Gateway clients, DynamoDB and
 * SES, one run handling at most ROTATION_BATCH_SIZE keys. Called once per container, at cold start.
 */
export function composeRotateKeys(config: Config = loadConfig()) {
  const deps = rotationDeps(config, { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() });
  return (now: Date) => rotateDueKeys(now, config.rotationBatchSize, deps);
}
