import { readFile } from 'node:fs/promises';
import { APIGatewayClient, GetRestApisCommand, GetStagesCommand, GetUsagePlansCommand } from '@aws-sdk/client-api-gateway';
import { DescribeTimeToLiveCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { type LocalStack, bootstrapLocalStack } from '../../../infra/local/bootstrap';
import { useLocalStack } from '../../support/local-env';

const clientsFor = (stack: LocalStack) => {
  const config = { endpoint: stack.endpoint, region: stack.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  return { apiGateway: new APIGatewayClient(config), dynamo: new DynamoDBClient(config), sqs: new SQSClient(config) };
};

describe('bootstrapLocalStack', () => {
  it('creates nothing new when it runs again', async () => {
    // Prepare: the global setup has bootstrapped this emulator once already
    const stack = useLocalStack();
    const { apiGateway, dynamo, sqs } = clientsFor(stack);

    // Act
    const again = await bootstrapLocalStack({ endpoint: stack.endpoint });

    // Assess
    expect(again).toEqual(stack);
    const { TableNames = [] } = await dynamo.send(new ListTablesCommand({}));
    expect(TableNames.filter((name) => name === stack.tableName)).toHaveLength(1);
    const { QueueUrls = [] } = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'keyplan-local' }));
    expect(QueueUrls.toSorted()).toEqual([stack.dlqUrl, stack.queueUrl].toSorted());
    const { items: apis = [] } = await apiGateway.send(new GetRestApisCommand({}));
    expect(apis.filter((api) => api.name === 'keyplan-local').map((api) => api.id)).toEqual([stack.restApiId]);
    const { item: stages = [] } = await apiGateway.send(new GetStagesCommand({ restApiId: stack.restApiId }));
    expect(stages.map((stage) => stage.stageName)).toEqual(['local']);
    const { items: plans = [] } = await apiGateway.send(new GetUsagePlansCommand({}));
    const keyplanPlans = plans.filter((plan) => plan.name?.startsWith('keyplan-'));
    expect(keyplanPlans.map((plan) => plan.id).toSorted()).toEqual(Object.values(stack.usagePlans).toSorted());
  });

  it('creates the resources the way infra/ defines them', async () => {
    // Prepare
    const stack = useLocalStack();
    const { apiGateway, dynamo, sqs } = clientsFor(stack);
    const { tiers } = JSON.parse(await readFile('infra/tiers.json', 'utf8')) as {
      tiers: Record<string, { throttle: object; quota: object }>;
    };

    // Act
    const [ttl, queue, dlq, { items: plans = [] }] = await Promise.all([
      dynamo.send(new DescribeTimeToLiveCommand({ TableName: stack.tableName })),
      sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.queueUrl, AttributeNames: ['All'] })),
      sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.dlqUrl, AttributeNames: ['All'] })),
      apiGateway.send(new GetUsagePlansCommand({})),
    ]);

    // Assess
    expect(ttl.TimeToLiveDescription).toMatchObject({ TimeToLiveStatus: 'ENABLED', AttributeName: 'expiresAt' });
    expect(queue.Attributes?.VisibilityTimeout).toBe('360');
    expect(JSON.parse(queue.Attributes?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: dlq.Attributes?.QueueArn,
      maxReceiveCount: 5,
    });
    expect(dlq.Attributes?.MessageRetentionPeriod).toBe(String(14 * 24 * 60 * 60));
    expect(Object.keys(stack.usagePlans).toSorted()).toEqual(Object.keys(tiers).toSorted());
    for (const [tier, definition] of Object.entries(tiers)) {
      expect(plans.find((plan) => plan.id === stack.usagePlans[tier])).toMatchObject({
        name: `keyplan-${tier}`,
        ...definition,
        apiStages: [{ apiId: stack.restApiId, stage: 'local' }],
      });
    }
  });
});
