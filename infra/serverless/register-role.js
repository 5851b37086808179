import { lambdaRole, logsStatement } from './iam.js';
import { PROVISIONING_QUEUE } from './provisioning-queue.js';
import { provisioningStatements } from './provisioning-statements.js';

/**
 * The register function's role: the provisioning saga for synchronous requests, and enqueueing
 * the registrations that ask for `Prefer: respond-async`.
 */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [
    logsStatement(`${service}-${stage}-register`),
    ...(await provisioningStatements(resolveVariable)),
    {
      Sid: 'EnqueueRegistration',
      Effect: 'Allow',
      Action: 'sqs:SendMessage',
      Resource: { 'Fn::GetAtt': [PROVISIONING_QUEUE, 'Arn'] },
    },
  ];

  return { Resources: { RegisterRole: lambdaRole(statements) } };
}
