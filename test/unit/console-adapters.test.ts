import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { SqsQueueDepths } from '../../shared/aws/console-queues';
import { ConsoleTable } from '../../shared/aws/console-table';
import { DUE } from '../../shared/core/model';
import { TransientAwsError } from '../../shared/errors';
import { awsError } from '../support/provisioning-fakes';

const TABLE = 'keyplan-test';
const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/keyplan-prod-provisioning';
const DLQ = 'https://sqs.eu-west-1.amazonaws.com/123456789012/keyplan-prod-provisioning-dlq';
const REDRIVE = JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:eu-west-1:123456789012:keyplan-prod-provisioning-dlq', maxReceiveCount: 5 });

function aTable() {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
  return { mock: mockClient(client), table: new ConsoleTable({ client, tableName: TABLE }) };
}

describe('ConsoleTable', () => {
  it('reads a partition of the due index whole, page after page, three attributes of each item', async () => {
    const { mock, table } = aTable();
    mock
      .on(QueryCommand)
      .resolvesOnce({ Items: [{ dueAt: '2026-04-01T00:00:00Z' }], LastEvaluatedKey: { pk: 'x' } })
      .resolvesOnce({ Items: [{ dueAt: '2026-04-02T00:00:00Z', retireAt: '2026-04-09T00:00:00Z', shard: 'west' }] });

    const entries = [];
    for await (const entry of table.entries(DUE.remind)) entries.push(entry);

    expect(entries).toEqual([
      { dueAt: '2026-04-01T00:00:00Z', retireAt: undefined, shard: undefined },
      { dueAt: '2026-04-02T00:00:00Z', retireAt: '2026-04-09T00:00:00Z', shard: 'west' },
    ]);
    const input = mock.commandCalls(QueryCommand)[0]!.args[0].input;
    expect(input).toMatchObject({ IndexName: 'due', KeyConditionExpression: 'dueType = :dueType', ExpressionAttributeValues: { ':dueType': 'REMIND' } });
    expect(input.ProjectionExpression).toBe('dueAt, retireAt, #shard');
  });

  it('reads a profile with its tier history and every key item, and nothing for an unknown customer', async () => {
    const { mock, table } = aTable();
    mock.on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'CUSTOMER#c1', ':keys': 'KEY#' } }).resolves({
      Items: [
        { sk: 'KEY#k1', customerId: 'c1', keyId: 'k1', state: 'ACTIVE', usagePlanId: 'p', tier: 'pro', registrationId: 'r1', createdAt: '2026-01-01T00:00:00Z', generation: 1 },
        {
          sk: 'PROFILE',
          customerId: 'c1',
          email: 'c1@example.com',
          tier: 'pro',
          status: 'ACTIVE',
          registrationId: 'r1',
          createdAt: '2026-01-01T00:00:00Z',
          updatedAt: '2026-02-01T00:00:00Z',
          tierHistory: [{ from: 'free', to: 'pro', requestId: 'req-1', at: '2026-02-01T00:00:00Z' }],
        },
      ],
    });
    mock.on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'CUSTOMER#nobody', ':keys': 'KEY#' } }).resolves({ Items: [] });

    const profile = await table.profileOf('c1');

    expect(profile).toMatchObject({ customerId: 'c1', email: 'c1@example.com', tier: 'pro', status: 'ACTIVE', registrationId: 'r1' });
    expect(profile?.tierHistory).toEqual([{ from: 'free', to: 'pro', requestId: 'req-1', at: '2026-02-01T00:00:00Z' }]);
    expect(profile?.keys.map((k) => [k.keyId, k.state])).toEqual([['k1', 'ACTIVE']]);
    expect(await table.profileOf('nobody')).toBeUndefined();
  });

  it('finds failed registrations with a filtered scan, newest first, and counts them all', async () => {
    const { mock, table } = aTable();
    mock
      .on(ScanCommand)
      .resolvesOnce({ Items: [{ registrationId: 'r1', customerId: 'c1', tier: 'free', failureReason: 'association-rejected', updatedAt: '2026-03-01T00:00:00Z' }], LastEvaluatedKey: { pk: 'x' } })
      .resolvesOnce({ Items: [{ registrationId: 'r2', customerId: 'c2', tier: 'pro', updatedAt: '2026-03-05T00:00:00Z' }] });

    const { failures, total } = await table.recentFailures(1);

    expect(total).toBe(2);
    expect(failures).toEqual([{ registrationId: 'r2', customerId: 'c2', tier: 'pro', failureReason: undefined, updatedAt: '2026-03-05T00:00:00Z' }]);
    expect(mock.commandCalls(ScanCommand)[0]!.args[0].input).toMatchObject({
      FilterExpression: 'begins_with(pk, :reg) AND #state = :failed',
      ExpressionAttributeValues: { ':reg': 'REG#', ':failed': 'FAILED' },
    });
  });

  it('translates DynamoDB throttling', async () => {
    const { mock, table } = aTable();
    mock.on(ScanCommand).rejects(awsError('ProvisionedThroughputExceededException'));

    await expect(table.recentFailures(5)).rejects.toThrow(TransientAwsError);
  });
});

describe('SqsQueueDepths', () => {
  it("sums the queues' and their DLQs' depths, finding each DLQ by its redrive policy once", async () => {
    const sqs = new SQSClient({ region: 'eu-west-1' });
    const mock = mockClient(sqs);
    const west = `${QUEUE}-west`;
    mock.on(GetQueueAttributesCommand, { QueueUrl: QUEUE }).resolves({ Attributes: { ApproximateNumberOfMessages: '3', RedrivePolicy: REDRIVE } });
    mock.on(GetQueueAttributesCommand, { QueueUrl: west }).resolves({ Attributes: { ApproximateNumberOfMessages: '4' } });
    mock.on(GetQueueAttributesCommand, { QueueUrl: DLQ }).resolves({ Attributes: { ApproximateNumberOfMessages: '2' } });
    mock.on(GetQueueUrlCommand).resolves({ QueueUrl: DLQ });
    const depths = new SqsQueueDepths({ client: sqs, queueUrls: [QUEUE, west, QUEUE] });

    const first = await depths.depths();
    const second = await depths.depths();

    expect(first).toEqual({ queue: 7, dlq: 2, queues: 2 });
    expect(second).toEqual(first);
    expect(mock.commandCalls(GetQueueUrlCommand)).toHaveLength(1);
    expect(mock.commandCalls(GetQueueUrlCommand)[0]!.args[0].input).toEqual({
      QueueName: 'keyplan-prod-provisioning-dlq',
      QueueOwnerAWSAccountId: '123456789012',
    });
  });

  it('looks a DLQ up again after a failed look-up, and says SQS throttling is transient', async () => {
    const sqs = new SQSClient({ region: 'eu-west-1' });
    const mock = mockClient(sqs);
    mock.on(GetQueueAttributesCommand, { QueueUrl: QUEUE }).resolves({ Attributes: { ApproximateNumberOfMessages: '0', RedrivePolicy: REDRIVE } });
    mock.on(GetQueueAttributesCommand, { QueueUrl: DLQ }).resolves({ Attributes: { ApproximateNumberOfMessages: '1' } });
    mock.on(GetQueueUrlCommand).rejectsOnce(awsError('ThrottlingException')).resolves({ QueueUrl: DLQ });
    const depths = new SqsQueueDepths({ client: sqs, queueUrls: [QUEUE] });

    await expect(depths.depths()).rejects.toThrow(TransientAwsError);
    expect(await depths.depths()).toEqual({ queue: 0, dlq: 1, queues: 1 });
  });
});
