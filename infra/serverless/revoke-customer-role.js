import { revocationStatements } from './customer-statements.js';
import { lambdaRole, logsStatement } from './iam.js';

/** The revokeCustomer function's role: disabling all of one customer's keys (customer-statements.js). */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [logsStatement(`${service}-${stage}-revokeCustomer`), ...revocationStatements(stage)];

  return { Resources: { RevokeCustomerRole: lambdaRole(statements) } };
}
