import { consumeQueueStatement, lambdaRole, logsStatement } from './iam.js';
import { PROVISIONING_QUEUE } from './provisioning-queue.js';
import { provisioningStatements } from './provisioning-statements.js';

/**
 * The provisionWorker function's role: the same saga as register, and consuming the provisioning
 * queue. Lambda polls the queue with the function's role, so the event source mapping needs these
 * SQS actions here; the DLQ is not granted (SQS itself moves messages there).
 */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [
    logsStatement(`${service}-${stage}-provisionWorker`),
    ...(await provisioningStatements(resolveVariable)),
    consumeQueueStatement('ConsumeProvisioningQueue', PROVISIONING_QUEUE),
  ];

  return { Resources: { ProvisionWorkerRole: lambdaRole(statements) } };
}
