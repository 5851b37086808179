import { usageStatements } from './customer-statements.js';
import { lambdaRole, logsStatement } from './iam.js';

/** The customerUsage function's role: read-only, the key items and their plans' usage. */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [logsStatement(`${service}-${stage}-customerUsage`), ...usageStatements()];

  return { Resources: { CustomerUsageRole: lambdaRole(statements) } };
}
