import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import { runSweep } from '../../shared/sweep/sweep';
import { resumeDeps } from '../../shared/wiring/resume';

/**
 * The sweep's composition root: the saga and every interrupted operation over both API Gateway
 * clients, DynamoDB and SES; each half handles at most RESUME_BATCH_SIZE per run. Called once per
 * container, at cold start.
 */
export function composeResumeRegistrations(config: CoreConfig = loadCoreConfig()) {
  const deps = resumeDeps(config, { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() });
  return (now: Date) => runSweep(now, config.resumeBatchSize, deps);
}
