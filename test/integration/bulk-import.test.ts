import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetApiKeysCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { startQueuePoller } from '../../infra/local/queue-poller';
import { createAwsClients } from '../../shared/aws/clients';
import { loadConfig } from '../../shared/config';
import { createWorkerDeps } from '../../shared/wiring/compose';
import { provisioningBatchHandler } from '../../functions/provision-worker/batch';
import { createQueuePair, eventually, queueDepth, type SentEmail } from '../support/emulator-probe';

const run = promisify(execFile);
const stack = inject('localStack');
// 200 rows in npm test (enough for several batches per worker, replays and the DLQ check); the soak
// (`npm run soak`) imports 1,000.
const ROWS = Number(process.env.KEYPLAN_BULK_ROWS ?? 200);
const TIERS = ['free', 'basic', 'pro'] as const;
const prefix = `bulk-${process.pid}-${Date.now()}`;
const domain = `${prefix}.example.com`;
const tierOf = (n: number) => TIERS[n % TIERS.length] ?? 'free';
let dir: string;
let file: string;
let queues: { queueUrl: string; dlqUrl: string };

interface ImportSummary {
  counts: Record<'queued' | 'requeued' | 'skipped' | 'invalid' | 'failed', number>;
}

/** The operator's command, as a child process, against the emulator through the environment. */
async function importFile(): Promise<ImportSummary> {
  const env = { ...process.env, ...functionEnvironment(stack), QUEUE_URL: queues.queueUrl };
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/import.ts', file, '--json'], { env });
  return JSON.parse(stdout) as ImportSummary;
}

/** Runs the worker on the test's queue, as the event source mapping would, until it is empty. */
async function drainQueue(): Promise<void> {
  const config = loadConfig({ ...functionEnvironment(stack), MANAGEMENT_CALLS_PER_SECOND: '1000' });
  const poller = startQueuePoller({
    sqs: createAwsClients().sqs,
    queueUrl: queues.queueUrl,
    handler: provisioningBatchHandler(createWorkerDeps(config)),
    concurrency: 4,
    retryDelaySeconds: 1,
  });
  try {
    await eventually(async () => (await queueDepth(createAwsClients().sqs, queues.queueUrl)) === 0, 480_000, 1_000);
  } finally {
    await poller.stop();
  }
}

async function keysOfThisRun() {
  const { items = [] } = await createAwsClients().apiGateway.send(new GetApiKeysCommand({ limit: 500 }));
  return items.filter((key) => key.customerId?.startsWith(`${prefix}-`));
}

async function emailsOfThisRun(): Promise<SentEmail[]> {
  const data = (await (await fetch(`${stack.endpoint}/moto-api/data.json`)).json()) as {
    ses?: { Message?: SentEmail[] };
  };
  return (data.ses?.Message ?? []).filter((m) => m.destinations.ToAddresses?.some((to) => to.endsWith(`@${domain}`)));
}

beforeAll(async () => {
  Object.assign(process.env, functionEnvironment(stack));
  queues = await createQueuePair(createAwsClients().sqs, `${prefix}-queue`);
  dir = await mkdtemp(join(tmpdir(), 'keyplan-bulk-'));
  file = join(dir, 'customers.csv');
  const rows = ['customerId,email,tier'];
  for (let n = 0; n < ROWS; n++) rows.push(`${prefix}-${n},c${n}@${domain},${tierOf(n)}`);
  await writeFile(file, `${rows.join('\n')}\n`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe(`importing ${ROWS} rows through the queue`, () => {
  it('ends with one key per row in its tier plan, one email each, nothing in the DLQ; a re-run adds nothing', async () => {
    const first = await importFile();
    expect(first.counts).toEqual({ queued: ROWS, requeued: 0, skipped: 0, invalid: 0, failed: 0 });

    await drainQueue();

    const keys = await keysOfThisRun();
    expect(keys).toHaveLength(ROWS);
    expect(keys.every((key) => key.enabled)).toBe(true);
    const apiGateway = createAwsClients().apiGateway;
    const planOfKey = new Map<string, string[]>();
    for (const [tier, planId] of Object.entries(stack.usagePlans)) {
      const { items = [] } = await apiGateway.send(new GetUsagePlanKeysCommand({ usagePlanId: planId, limit: 1000 }));
      for (const item of items) planOfKey.set(String(item.id), [...(planOfKey.get(String(item.id)) ?? []), tier]);
    }
    for (const key of keys) {
      const n = Number(String(key.customerId).slice(prefix.length + 1));
      expect(planOfKey.get(String(key.id))).toEqual([tierOf(n)]);
    }
    const emails = await emailsOfThisRun();
    expect(emails).toHaveLength(ROWS);
    expect(new Set(emails.flatMap((m) => m.destinations.ToAddresses)).size).toBe(ROWS);
    expect(await queueDepth(createAwsClients().sqs, queues.dlqUrl)).toBe(0);

    const again = await importFile();
    expect(again.counts).toEqual({ queued: 0, requeued: 0, skipped: ROWS, invalid: 0, failed: 0 });
    expect(await queueDepth(createAwsClients().sqs, queues.queueUrl)).toBe(0);
    expect(await keysOfThisRun()).toHaveLength(ROWS);
    expect(await emailsOfThisRun()).toHaveLength(ROWS);
  }, 900_000);
});
