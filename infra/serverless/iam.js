// ARN builders for function roles. Everything goes through Fn::Sub with pseudo parameters, so the
// template is built offline (no ${aws:accountId} lookups) and is valid in any partition.

export const sub = (text) => ({ 'Fn::Sub': text });

/** API Gateway management authorizes HTTP verbs on resource paths, not operation names. */
export const apiGatewayArn = (resourcePath) =>
  sub(`arn:\${AWS::Partition}:apigateway:\${AWS::Region}::${resourcePath}`);

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
