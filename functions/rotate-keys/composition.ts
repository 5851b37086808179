import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import { runScheduledRotation } from '../../shared/shards/scheduled-rotation';
import { drainDeps } from '../../shared/wiring/shards';

/**
 * The scheduled rotation's composition root: rotation over both API Gateway clients, DynamoDB and
 * SES, one run handling at most ROTATION_BATCH_SIZE keys: the due ones first, then, with what is
 * left of the batch, those of shards being drained. Called once per container, at cold start.
 */
export function composeRotateKeys(config: CoreConfig = loadCoreConfig()) {
  const deps = drainDeps(config, { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() });
  return (now: Date) => runScheduledRotation(now, config.rotationBatchSize, deps);
}
