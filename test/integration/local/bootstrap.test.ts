import { readFile } from 'node:fs/promises';
import { APIGatewayClient, GetRestApisCommand, GetStagesCommand, GetUsagePlansCommand } from '@aws-sdk/client-api-gateway';
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { DescribeRuleCommand, EventBridgeClient, ListRulesCommand, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import { GetQueueAttributesCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { type LocalStack, bootstrapLocalStack } from '../../../infra/local/bootstrap';
import { useLocalStack } from '../../support/local-env';

const clientsFor = (stack: LocalStack) => {
  const config = { endpoint: stack.endpoint, region: stack.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  return {
    apiGateway: new APIGatewayClient(config),
    dynamo: new DynamoDBClient(config),
    sqs: new SQSClient(config),
    eventBridge: new EventBridgeClient(config),
  };
};

describe('bootstrapLocalStack', () => {
  it('creates nothing new when it runs again', async () => {
    // Prepare: the global setup has bootstrapped this emulator once already
    const stack = useLocalStack();
    const { apiGateway, dynamo, sqs, eventBridge } = clientsFor(stack);

    // Act
    const again = await bootstrapLocalStack({ endpoint: stack.endpoint });

    // Assess
    expect(again).toEqual(stack);
    const { TableNames = [] } = await dynamo.send(new ListTablesCommand({}));
    expect(TableNames.filter((name) => name === stack.tableName)).toHaveLength(1);
    const { QueueUrls = [] } = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'keyplan-local' }));
    expect(QueueUrls.toSorted()).toEqual([stack.dlqUrl, stack.queueUrl, stack.eventsTapQueueUrl].toSorted());
    const { Rules = [] } = await eventBridge.send(new ListRulesCommand({ NamePrefix: 'keyplan-local' }));
    expect(Rules.map((rule) => rule.Name)).toEqual(['keyplan-local-events-tap']);
    const { Targets = [] } = await eventBridge.send(new ListTargetsByRuleCommand({ Rule: 'keyplan-local-events-tap' }));
    expect(Targets).toHaveLength(1);
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
    const { apiGateway, dynamo, sqs, eventBridge } = clientsFor(stack);
    const { tiers } = JSON.parse(await readFile('infra/tiers.json', 'utf8')) as {
      tiers: Record<string, { throttle: object; quota: object }>;
    };

    // Act
    const [ttl, { Table: table }, tap, rule, { Targets: targets = [] }, queue, dlq, { items: plans = [] }] = await Promise.all([
      dynamo.send(new DescribeTimeToLiveCommand({ TableName: stack.tableName })),
      dynamo.send(new DescribeTableCommand({ TableName: stack.tableName })),
      sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.eventsTapQueueUrl, AttributeNames: ['QueueArn'] })),
      eventBridge.send(new DescribeRuleCommand({ Name: 'keyplan-local-events-tap' })),
      eventBridge.send(new ListTargetsByRuleCommand({ Rule: 'keyplan-local-events-tap' })),
      sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.queueUrl, AttributeNames: ['All'] })),
      sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.dlqUrl, AttributeNames: ['All'] })),
      apiGateway.send(new GetUsagePlansCommand({})),
    ]);

    // Assess
    expect(ttl.TimeToLiveDescription).toMatchObject({ TimeToLiveStatus: 'ENABLED', AttributeName: 'expiresAt' });
    // The stream the lifecycle events' publisher reads, as deployed.
    expect(table?.StreamSpecification).toEqual({ StreamEnabled: true, StreamViewType: 'NEW_IMAGE' });
    expect(table?.LatestStreamArn).toMatch(/\/stream\//);
    // The events tap: the stage's lifecycle events on the default bus, to the tap queue.
    expect(rule).toMatchObject({ EventBusName: 'default', State: 'ENABLED' });
    expect(JSON.parse(String(rule.EventPattern))).toEqual({ source: ['keyplan.local'] });
    expect(targets.map((target) => target.Arn)).toEqual([tap.Attributes?.QueueArn]);
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
