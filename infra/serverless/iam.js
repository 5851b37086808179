// ARN builders for function roles. Everything goes through Fn::Sub with pseudo parameters, so the
// template is built offline (no ${aws:accountId} lookups) and is valid in any partition.
import { readTiers, usagePlanLogicalIds } from './source.js';

export const sub = (text) => ({ 'Fn::Sub': text });

/**
 * The tag every API key of a stage carries (value: the stage, the functions' STAGE). The roles
 * admit calls on a key only with it, so the code must tag with exactly this key.
 */
export const STAGE_TAG = 'keyplan:stage';

/** The stage's table (infra/serverless/table.js). */
export const tableArn = () => ({ 'Fn::GetAtt': ['KeyplanTable', 'Arn'] });

/** API Gateway management authorizes HTTP verbs on resource paths, not operation names. */
export const apiGatewayArn = (resourcePath) =>
  sub(`arn:\${AWS::Partition}:apigateway:\${AWS::Region}::${resourcePath}`);

/**
 * A path under each of this stage's usage plans (one per tier of infra/tiers.json), e.g. '/keys'
 * for CreateUsagePlanKey; '' is the plan itself. Never a wildcard plan: plans of other stacks in
 * the account stay out of reach.
 */
export const stagePlanArns = (suffix) =>
  Object.values(usagePlanLogicalIds(readTiers())).map((id) => apiGatewayArn(`/usageplans/\${${id}}${suffix}`));

/** Lambda polling a queue for its function: the event source mapping runs with the role. */
export const consumeQueueStatement = (sid, queueId) => ({
  Sid: sid,
  Effect: 'Allow',
  Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
  Resource: { 'Fn::GetAtt': [queueId, 'Arn'] },
});

/**
 * Lambda's own logging permissions, limited to the function's log group. CreateLogGroup is left
 * out on purpose: the stack owns the group (with its retention), and a function able to recreate
 * it after a deletion would bring it back without one.
 */
export const logsStatement = (functionName) => ({
  Sid: 'OwnLogGroup',
  Effect: 'Allow',
  Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
  Resource: sub(
    `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${functionName}:*`,
  ),
});

export const lambdaRole = (statements) => ({
  Type: 'AWS::IAM::Role',
  Properties: {
    AssumeRolePolicyDocument: {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ],
    },
    Policies: [
      {
        PolicyName: 'least-privilege',
        PolicyDocument: { Version: '2012-10-17', Statement: statements },
      },
    ],
  },
});
