import { tierChangeStatements } from './customer-statements.js';
import { consumeQueueStatement, lambdaRole, logsStatement } from './iam.js';
import { TIER_CHANGES_QUEUE } from './tier-changes-queue.js';

/**
 * The changeTierEvents function's role: the tier change of changeTier, for the billing system's
 * PlanChanged events, and consuming the tier-changes queue they arrive on (not its DLQ: SQS moves
 * messages there itself).
 */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [
    logsStatement(`${service}-${stage}-changeTierEvents`),
    ...tierChangeStatements(),
    consumeQueueStatement('ConsumeTierChangesQueue', TIER_CHANGES_QUEUE),
  ];

  return { Resources: { ChangeTierEventsRole: lambdaRole(statements) } };
}
