import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { KeyTable } from '../../shared/aws/key-table';
import { rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import type { RotationDeps } from '../../shared/rotation/rotate-key';
import { lambdaContext } from '../support/api-events';
import { mockedProvisioning } from '../support/provisioning-fakes';

const NOW = new Date('2026-06-01T03:00:00.000Z');

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name));
}

describe('rotateDueKeys', () => {
  it('finds due keys with a bounded Query on the sparse due index and counts the rest the same way', async () => {
    const m = mockedProvisioning();
    // The due keys (none in this batch), then the count of those still due, over two pages.
    m.dynamoMock
      .on(QueryCommand)
      .resolvesOnce({ Items: [] })
      .resolvesOnce({ Count: 4, LastEvaluatedKey: { pk: 'CUSTOMER#c4', sk: 'KEY#k4' } })
      .resolvesOnce({ Count: 3 });
    const keyStore = new KeyTable({ client: m.dynamo, tableName: 'keyplan-test' });
    const deps: RotationDeps = {
      ...m.deps,
      keyStore,
      settings: {
        ...m.deps.settings,
        keyNamePrefix: 'kp',
        rotationDays: 90,
        graceDays: 7,
        reminderDays: 2,
        keyRetentionDays: 30,
        leaseSeconds: 60,
      },
    };

    const report = await rotateDueKeys(NOW, 25, deps);

    const queries = m.dynamoMock.commandCalls(QueryCommand).map((call) => call.args[0].input);
    expect(queries[0]).toMatchObject({
      IndexName: 'due',
      KeyConditionExpression: 'dueType = :dueType AND dueAt <= :now',
      ExpressionAttributeValues: { ':dueType': 'ROTATE', ':now': NOW.toISOString() },
      Limit: 25,
    });
    expect(queries[1]).toMatchObject({ IndexName: 'due', Select: 'COUNT' });
    // Counted across every page of the index, not the first one's.
    expect(queries[2]).toMatchObject({ IndexName: 'due', Select: 'COUNT', ExclusiveStartKey: { pk: 'CUSTOMER#c4', sk: 'KEY#k4' } });
    expect(report).toEqual({ rotated: 0, skipped: 0, busy: 0, failed: 0, remaining: 7 });
  });
});

describe('the service code', () => {
  it('never scans the table', async () => {
    const files = [...(await sourceFiles('shared')), ...(await sourceFiles('functions')), ...(await sourceFiles('cli'))];
    expect(files.length).toBeGreaterThan(10);
    const scanning: string[] = [];
    for (const file of files) {
      if (/\bScan(Command)?\b/.test(await readFile(file, 'utf8'))) scanning.push(file);
    }
    expect(scanning).toEqual([]);
  });
});

describe('the scheduled handlers', () => {
  it.each([
    ['rotate-keys', 'ROTATE'],
    ['retire-keys', 'REMIND'],
  ])('%s takes the event time, not the clock, as now', async (name, dueType) => {
    process.env.TABLE_NAME = 'keyplan-test';
    process.env.TIER_MAP = JSON.stringify({ free: 'plan-free' });
    process.env.SENDER_EMAIL = 'keys@example.com';
    process.env.AWS_REGION = 'us-east-1';
    const dynamo = mockClient(DynamoDBDocumentClient);
    dynamo.on(QueryCommand).resolves({ Items: [], Count: 0 });
    try {
      const { handler } = (await import(`../../functions/${name}/handler.ts`)) as {
        handler: (event: unknown, context: unknown) => Promise<unknown>;
      };
      const time = '2029-02-03T03:00:00Z';

      await handler({ time, 'detail-type': 'Scheduled Event', source: 'aws.events' }, lambdaContext());

      expect(dynamo.commandCalls(QueryCommand)[0]?.args[0].input.ExpressionAttributeValues).toEqual({
        ':dueType': dueType,
        ':now': new Date(time).toISOString(),
      });
    } finally {
      dynamo.restore();
    }
  });
});
