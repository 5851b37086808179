import { apiGatewayClients, dynamoClient, sesClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import { finishInterruptedOperations } from '../../shared/sweep/finish-interrupted';
import { finishDeps } from '../../shared/wiring/resume';

/**
 * The composition root of the sweep's second half: operations that died holding their customer's
 * must-finish lease (a rotation makes and emails a successor, so both API Gateway clients and SES;
 * a tier change, a repair, a revocation), at most RESUME_BATCH_SIZE per run, over the customer
 * ledger in DynamoDB. Called once per container, at cold start.
 */
export function composeFinishOperations(config: CoreConfig = loadCoreConfig()) {
  const deps = finishDeps(config, { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient() });
  return (now: Date) => finishInterruptedOperations(now, config.resumeBatchSize, deps);
}
