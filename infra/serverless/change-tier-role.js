import { tierChangeStatements } from './customer-statements.js';
import { lambdaRole, logsStatement } from './iam.js';

/** The changeTier function's role: one customer's tier change, on request (customer-statements.js). */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [logsStatement(`${service}-${stage}-changeTier`), ...tierChangeStatements()];

  return { Resources: { ChangeTierRole: lambdaRole(statements) } };
}
