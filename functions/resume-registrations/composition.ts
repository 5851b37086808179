import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { resumeStalledRegistrations } from '../../shared/provisioning/resume-registrations';
import { finishInterruptedOperations } from '../../shared/sweep/finish-interrupted';
import { resumeDeps } from '../../shared/wiring/resume';

/**
 * The sweep's composition root: the saga and every interrupted operation over both API Gateway
 * clients, DynamoDB and SES; each half handles at most RESUME_BATCH_SIZE per run. Called once per
 * container, at cold start.
 */
export function composeResumeRegistrations(config: Config = loadConfig()) {
  const deps = resumeDeps(config, { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() });
  return {
    resumeStalledRegistrations: (now: Date) => resumeStalledRegistrations(now, config.resumeBatchSize, deps),
    finishInterruptedOperations: (now: Date) => finishInterruptedOperations(now, config.resumeBatchSize, deps),
  };
}
