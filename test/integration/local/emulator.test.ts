import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  type AttributeValue,
  DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../../../infra/local/emulator';
import { useLocalStack } from '../../support/local-env';

const WRITERS = 4;

describe('local emulator', () => {
  it('rolls a cancelled transaction back completely, items updated before the failing one included', async () => {
    const stack = useLocalStack();
    const dynamo = new DynamoDBClient({
      endpoint: stack.endpoint,
      region: stack.region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const pk = `tx-${process.pid}-${Date.now()}`;
    await dynamo.send(new PutItemCommand({ TableName: stack.tableName, Item: { pk: { S: pk }, sk: { S: 'a' }, v: { N: '1' } } }));

    const cancelled = dynamo.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Update: {
              TableName: stack.tableName,
              Key: { pk: { S: pk }, sk: { S: 'a' } },
              UpdateExpression: 'SET v = :two',
              ExpressionAttributeValues: { ':two': { N: '2' } },
            },
          },
          { Put: { TableName: stack.tableName, Item: { pk: { S: pk }, sk: { S: 'new' } } } },
          {
            ConditionCheck: {
              TableName: stack.tableName,
              Key: { pk: { S: pk }, sk: { S: 'missing' } },
              ConditionExpression: 'attribute_exists(pk)',
            },
          },
        ],
      }),
    );

    await expect(cancelled).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    const after = await dynamo.send(
      new QueryCommand({
        TableName: stack.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: pk } },
      }),
    );
    expect(after.Items).toEqual([{ pk: { S: pk }, sk: { S: 'a' }, v: { N: '1' } }]);
  });

  it('lets exactly one of several concurrent conditional writes to one key succeed', async () => {
    // Prepare: moto takes long to build a large item between its condition check and its write,
    // which is where an unserialized emulator lets several writers through.
    const stack = useLocalStack();
    const dynamo = new DynamoDBClient({
      endpoint: stack.endpoint,
      region: stack.region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const bulk: Record<string, AttributeValue> = {};
    for (let i = 0; i < 300; i++) bulk[`a${i}`] = { M: { s: { S: 'v' }, l: { L: [{ N: '1' }, { N: '2' }] } } };
    const pk = `race-${process.pid}-${Date.now()}`;
    const claim = (round: number, writer: number) =>
      dynamo.send(
        new PutItemCommand({
          TableName: stack.tableName,
          Item: { pk: { S: pk }, sk: { S: `round-${round}` }, writer: { N: String(writer) }, ...bulk },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );

    // Act
    const rounds: PromiseSettledResult<unknown>[][] = [];
    for (let round = 0; round < 3; round++) {
      rounds.push(await Promise.allSettled(Array.from({ length: WRITERS }, (_, writer) => claim(round, writer))));
    }

    // Assess
    for (const results of rounds) {
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.filter((result) => result.status === 'rejected');
      expect(rejected.map((result) => (result.reason as Error).name)).toEqual(
        Array(WRITERS - 1).fill('ConditionalCheckFailedException'),
      );
    }
  });

  it('fails with a message naming the cause when its port is taken', async () => {
    // Prepare
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;

    try {
      // Act + Assess
      await expect(startEmulator({ port })).rejects.toThrow(new RegExp(`exited before it was ready[\\s\\S]*${port} is in use`));
    } finally {
      blocker.close();
    }
  });
});
