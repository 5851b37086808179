import { lambdaRole, logsStatement } from './iam.js';
import { rotationStatements } from './rotation-statements.js';

/**
 * The rotateCustomer function's role: the rotation of rotateKeys, on demand, for one customer's keys
 * (rotation-statements.js).
 */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [
    logsStatement(`${service}-${stage}-rotateCustomer`),
    ...(await rotationStatements(resolveVariable)),
  ];

  return { Resources: { RotateCustomerRole: lambdaRole(statements) } };
}
