import { lambdaRole, logsStatement } from './iam.js';
import { retirementStatements } from './rotation-statements.js';

/** The retireKeys function's role: reminders, disabling and deleting retired keys. */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [
    logsStatement(`${service}-${stage}-retireKeys`),
    ...(await retirementStatements(resolveVariable)),
  ];

  return { Resources: { RetireKeysRole: lambdaRole(statements) } };
}
