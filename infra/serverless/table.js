import { readTable, resolveParam, toBoolean } from './source.js';

// CreateTable and AWS::DynamoDB::Table agree on these keys; the TTL and the stream are translated
// below; any other key in table.json (SSE, provisioned capacity) has a different shape in
// CloudFormation, so it fails the package instead of being dropped on the way to a deployed table
// that differs from the local one.
const SAME_SHAPE = ['AttributeDefinitions', 'KeySchema', 'GlobalSecondaryIndexes', 'BillingMode'];
const HANDLED = new Set([...SAME_SHAPE, 'TimeToLiveAttribute', 'StreamSpecification', '$comment']);

/**
 * CreateTable's StreamSpecification ({StreamEnabled, StreamViewType}) as CloudFormation's, which
 * has only the view type: a stream is on when the property is there.
 */
function streamSpecification(stream) {
  if (stream === undefined || stream.StreamEnabled === false) return {};
  if (stream.StreamEnabled !== true || !stream.StreamViewType) {
    throw new Error('infra/table.json: StreamSpecification needs StreamEnabled true and a StreamViewType');
  }
  return { StreamSpecification: { StreamViewType: stream.StreamViewType } };
}

/** The table of infra/table.json as an AWS::DynamoDB::Table, hardened for a deployed stage. */
export async function resources({ resolveVariable }) {
  const table = readTable();
  const unknown = Object.keys(table).filter((key) => !HANDLED.has(key));
  if (unknown.length > 0) {
    throw new Error(`infra/table.json has keys the deploy does not translate: ${unknown.join(', ')}`);
  }
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const protect = toBoolean(
    await resolveParam(resolveVariable, 'deletionProtection'),
    'deletionProtection',
  );

  const properties = { TableName: `${service}-${stage}` };
  for (const key of SAME_SHAPE) {
    if (table[key] !== undefined) properties[key] = table[key];
  }

  return {
    Resources: {
      KeyplanTable: {
        Type: 'AWS::DynamoDB::Table',
        // A protected stage keeps its data even when the stack goes away; dev tables go with it.
        DeletionPolicy: protect ? 'Retain' : 'Delete',
        UpdateReplacePolicy: protect ? 'Retain' : 'Delete',
        Properties: {
          ...properties,
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          ...(table.TimeToLiveAttribute
            ? {
                TimeToLiveSpecification: {
                  AttributeName: table.TimeToLiveAttribute,
                  Enabled: true,
                },
              }
            : {}),
          ...streamSpecification(table.StreamSpecification),
          DeletionProtectionEnabled: protect,
          // KMS with the AWS managed key: auditable in CloudTrail, no key policy for us to keep.
          SSESpecification: { SSEEnabled: true },
        },
      },
    },
    Outputs: {
      TableName: { Value: { Ref: 'KeyplanTable' } },
      ...(table.StreamSpecification?.StreamEnabled ? { TableStreamArn: { Value: { 'Fn::GetAtt': ['KeyplanTable', 'StreamArn'] } } } : {}),
    },
  };
}
