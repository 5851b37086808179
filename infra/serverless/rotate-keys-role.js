import { lambdaRole, logsStatement } from './iam.js';
import { rotationStatements } from './rotation-statements.js';

/** The rotateKeys function's role: the scheduled rotation of due keys (rotation-statements.js). */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [
    logsStatement(`${service}-${stage}-rotateKeys`),
    ...(await rotationStatements(resolveVariable)),
  ];

  return { Resources: { RotateKeysRole: lambdaRole(statements) } };
}
