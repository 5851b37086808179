import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import { resumeStalledRegistrations } from '../../shared/provisioning/resume-registrations';
import { resumeDeps } from '../../shared/wiring/resume';

/**
 * The resume sweep's composition root: the saga over both API Gateway clients, DynamoDB and SES,
 * for at most RESUME_BATCH_SIZE stalled registrations per run. The sweep's other half, finishing
 * interrupted customer operations, is finishOperations' (functions/finish-operations). Called
 * once per container, at cold start.
 */
export function composeResumeRegistrations(config: CoreConfig = loadCoreConfig()) {
  const deps = resumeDeps(config, { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() });
  return (now: Date) => resumeStalledRegistrations(now, config.resumeBatchSize, deps);
}
