import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';

const run = promisify(execFile);
const stack = inject('localStack');
const clientConfig = {
  endpoint: stack.endpoint,
  region: stack.region,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
};
const sqs = new SQSClient(clientConfig);
const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient(clientConfig));

// Other test files share the emulator's table and queue: this one has its own queue and its own
// customer ids.
const prefix = `imp-${process.pid}-${Date.now()}`;
const INVALID_LINES = [8, 23, 41];
let dir: string;
let file: string;
let queueUrl: string;

/** The operator's command, as a child process, against the emulator through the environment. */
async function importCommand(path: string) {
  const env = { ...process.env, ...functionEnvironment(stack), QUEUE_URL: queueUrl };
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/import.ts', path, '--json'], {
      env,
      cwd: process.cwd(),
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout: string; stderr: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function registrationsOfThisRun() {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo.send(
      new ScanCommand({
        TableName: stack.tableName,
        FilterExpression: 'begins_with(pk, :prefix)',
        ExpressionAttributeValues: { ':prefix': `REG#${prefix}-` },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items.sort((a, b) => String(a.pk).localeCompare(String(b.pk)));
}

async function messagesOnQueue(): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages);
}

beforeAll(async () => {
  ({ QueueUrl: queueUrl = '' } = await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-queue` })));
  dir = await mkdtemp(join(tmpdir(), 'keyplan-import-'));
  // 50 data rows on lines 2-51; three of them invalid.
  const rows = ['customerId,email,tier,name'];
  for (let n = 1; n <= 50; n++) {
    const line = n + 1;
    const id = `${prefix}-${n}`;
    if (line === 8) rows.push(`${id},not-an-address,free,`);
    else if (line === 23) rows.push(`${id},c${n}@example.com,platinum,`);
    else if (line === 41) rows.push(`bad id ${n},c${n}@example.com,free,`);
    else rows.push(`${id},c${n}@example.com,${n % 3 === 0 ? 'pro' : 'free'},"Customer ${n}, Inc."`);
  }
  file = join(dir, 'customers.csv');
  await writeFile(file, `${rows.join('\n')}\n`);
});

afterAll(async () => {
  await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
  await rm(dir, { recursive: true, force: true });
  sqs.destroy();
  dynamo.destroy();
});

describe('npm run import against the emulator', () => {
  it('queues the valid rows, reports the invalid ones by line, and exits 1; a second run creates nothing', async () => {
    // Act
    const first = await importCommand(file);

    // Assess
    expect(first.code).toBe(1);
    expect(first.stderr).toContain(`using the environment: table ${stack.tableName}`);
    expect(first.stderr).not.toMatch(/\n\s+at /);
    const summary = JSON.parse(first.stdout);
    expect(summary).toMatchObject({
      rows: 50,
      counts: { queued: 47, requeued: 0, skipped: 0, invalid: 3, failed: 0 },
      skipped: [],
      failed: [],
    });
    expect(summary.invalid.map((row: { line: number }) => row.line)).toEqual(INVALID_LINES);
    expect(summary.invalid.map((row: { field: string; message: string }) => [row.field, row.message])).toEqual([
      ['email', 'email must be one plain email address'],
      ['tier', `tier must be one of: ${Object.keys(stack.usagePlans).join(', ')}`],
      ['customerId', 'customerId may contain only letters, digits and . _ : -'],
    ]);

    const registrations = await registrationsOfThisRun();
    expect(registrations).toHaveLength(47);
    expect(registrations.every((item) => item.state === 'QUEUED')).toBe(true);
    expect(registrations.find((item) => item.pk === `REG#${prefix}-3`)).toMatchObject({
      registrationId: `${prefix}-3`,
      tier: 'pro',
      name: 'Customer 3, Inc.',
    });
    expect(await messagesOnQueue()).toBe(47);

    // Act: the same file again, as an operator would after fixing nothing.
    const second = await importCommand(file);

    // Assess: no worker ran, so every valid row is still QUEUED and is sent again (harmless, the
    // saga is idempotent); the table is untouched.
    expect(second.code).toBe(1);
    const again = JSON.parse(second.stdout);
    expect(again.counts).toEqual({ queued: 0, requeued: 47, skipped: 0, invalid: 3, failed: 0 });
    expect(await registrationsOfThisRun()).toEqual(registrations);
    expect(await messagesOnQueue()).toBe(94);
  });

  it('exits 2 naming an unknown column, before anything is written', async () => {
    // Prepare
    const path = join(dir, 'columns.csv');
    await writeFile(path, `customerId,email,tier,plan\n${prefix}-x,x@example.com,free,gold\n`);

    // Act
    const result = await importCommand(path);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown column "plan"');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    // --json: the failure as the one JSON object on stdout, for scripts.
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { code: 'import-file', exitCode: 2 } });
  });
});
