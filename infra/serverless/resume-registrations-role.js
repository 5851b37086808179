import { lambdaRole, logsStatement } from './iam.js';
import { provisioningStatements } from './provisioning-statements.js';
import { queryDueIndexStatement } from './rotation-statements.js';

/**
 * The resumeRegistrations function's role: the provisioning saga (it resumes registrations
 * through it, exactly as a repeated request would) and the RESUME partition of the 'due' index,
 * where unfinished registrations wait.
 */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [
    logsStatement(`${service}-${stage}-resumeRegistrations`),
    ...(await provisioningStatements(resolveVariable)),
    queryDueIndexStatement(),
  ];

  return { Resources: { ResumeRegistrationsRole: lambdaRole(statements) } };
}
