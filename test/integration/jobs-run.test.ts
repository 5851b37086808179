import { DeleteUsagePlanKeyCommand, GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { CreateQueueCommand, DeleteQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CliIo, runKeyplan } from '../../cli/run-keyplan';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients';
import { DAY_MS } from '../../shared/core/model';
import { plansOfKey, sentEmailsTo } from '../support/emulator-probe';

// A scheduled job takes whatever is due in its table, and the reconciler judges every key of its
// name prefix: this file has a table and a prefix of its own, so running the jobs months ahead
// touches no other test file's customers, and nothing another file does shows up here.
const unique = (label: string) => `${label}${process.pid}x${Date.now().toString(36)}`;
const HOUR_MS = 3_600_000;
let stack: LocalStack;
let env: NodeJS.ProcessEnv;
let aws: AwsClients;
let queueUrl: string;

interface CliRun {
  code: number;
  stderr: string;
  stdout: string;
  /** stdout parsed, with --json. */
  json: Record<string, unknown>;
}

/** `keyplan ARGS` in this process, against this file's table through the environment, as an operator runs it. */
async function keyplan(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    argv: args,
    env: { ...env },
    cwd: process.cwd(),
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += String(text)), isTTY: false } as unknown as CliIo['stderr'],
  };
  const code = await runKeyplan(io);
  expect(stderr, 'no stack trace').not.toMatch(/\n\s+at /);
  return { code, stdout, stderr, json: args.includes('--json') ? (JSON.parse(stdout) as Record<string, unknown>) : {} };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const fromNow = (days: number, hours = 0) => iso(Date.now() + days * DAY_MS + hours * HOUR_MS);
const apiKey = (keyId: string) => aws.apiGateway.send(new GetApiKeyCommand({ apiKey: keyId }));

async function provision(customerId: string, ...extra: string[]): Promise<string> {
  const run = await keyplan('provision', customerId, '--email', `${customerId}@example.com`, '--tier', 'free', '--json', ...extra);
  expect(run.code).toBe(0);
  return String(run.json.keyId);
}

const keysOf = async (customerId: string) =>
  ((await keyplan('status', customerId, '--json')).json.keys as { keyId: string; state: string }[]).map(({ keyId, state }) => ({
    keyId,
    state,
  }));

beforeAll(async () => {
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-jobs-') });
  // The SDK's clients take their endpoint and credentials from the process's environment.
  Object.assign(process.env, functionEnvironment(stack));
  aws = createAwsClients();
  ({ QueueUrl: queueUrl = '' } = await aws.sqs.send(new CreateQueueCommand({ QueueName: unique('keyplan-jobs-queue-') })));
  env = {
    ...functionEnvironment(stack),
    QUEUE_URL: queueUrl,
    KEY_NAME_PREFIX: unique('jobs'),
    MANAGEMENT_CALLS_PER_SECOND: '500',
    ROTATION_DAYS: '90',
    GRACE_DAYS: '7',
    REMINDER_DAYS: '2',
  };
});

afterAll(async () => {
  await aws.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
  for (const client of Object.values(aws)) client.destroy();
});

describe('keyplan jobs run against the emulator', () => {
  it("travels in time as the README shows: rotation due in 100 days, seen, done, then retirement after the grace", async () => {
    // Prepare
    const customer = unique('jobs-a');
    const address = `${customer}@example.com`;
    const firstKey = await provision(customer);
    const in100Days = fromNow(100);
    const afterGrace = fromNow(100 + 7 + 1);

    // Act + Assess: nothing is due now
    const today = await keyplan('jobs', 'run', 'rotate-keys', '--dry-run', '--json');
    expect(today.json).toMatchObject({ job: 'rotate-keys', dryRun: true, report: { due: { keys: [], totalDue: 0 } } });

    // Act + Assess: in 100 days the key is due; a dry run lists it and changes nothing
    const dry = await keyplan('jobs', 'run', 'rotate-keys', '--at', in100Days, '--dry-run', '--json');
    expect(dry.code).toBe(0);
    expect(dry.json).toMatchObject({
      job: 'rotate-keys',
      at: new Date(in100Days).toISOString(),
      dryRun: true,
      report: { batchSize: 50, due: { keys: [{ keyId: firstKey, customerId: customer, shard: 'home', state: 'ACTIVE' }], totalDue: 1 }, drains: [] },
    });
    expect(await keysOf(customer)).toEqual([{ keyId: firstKey, state: 'ACTIVE' }]);
    expect(await sentEmailsTo(stack.endpoint, address)).toHaveLength(1);
    const dryText = await keyplan('jobs', 'run', 'rotate-keys', '--at', in100Days, '--dry-run');
    expect(dryText.stdout).toMatch(/^rotate-keys as of \S+, dry run \(nothing changed\): would rotate 1 key \(1 due in all, batch 50\)\n/);
    expect(dryText.stdout).toMatch(new RegExp(`\\n  ${firstKey} +${customer} +home +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ\\n`));

    // Act + Assess: the run rotates it: a successor in the same plan, emailed; the old key retiring
    const rotated = await keyplan('jobs', 'run', 'rotate-keys', '--at', in100Days, '--json');
    expect(rotated.code).toBe(0);
    expect(rotated.json).toMatchObject({ dryRun: false, report: { rotated: 1, skipped: 0, busy: 0, failed: 0, remaining: 0 } });
    const keys = await keysOf(customer);
    const successor = keys.find((key) => key.keyId !== firstKey);
    expect(keys).toEqual(expect.arrayContaining([{ keyId: firstKey, state: 'RETIRING' }, { keyId: String(successor?.keyId), state: 'ACTIVE' }]));
    expect(await plansOfKey(aws.apiGateway, String(successor?.keyId))).toEqual([stack.usagePlans.free]);
    expect(await sentEmailsTo(stack.endpoint, address)).toHaveLength(2);

    // Act + Assess: after the grace, a dry run shows the reminder and the disabling it owes
    const retireDry = await keyplan('jobs', 'run', 'retire-keys', '--at', afterGrace, '--dry-run', '--json');
    expect(retireDry.json).toMatchObject({
      report: { remind: { keys: [{ keyId: firstKey }] }, retire: { keys: [{ keyId: firstKey }] }, delete: { keys: [] } },
    });
    expect((await apiKey(firstKey)).enabled).toBe(true);

    // Act + Assess: the run reminds and disables the old key; the successor keeps working
    const retired = await keyplan('jobs', 'run', 'retire-keys', '--at', afterGrace, '--json');
    expect(retired.code).toBe(0);
    expect(retired.json).toMatchObject({ report: { reminded: 1, disabled: 1, deleted: 0, busy: 0, failed: 0 } });
    expect((await apiKey(firstKey)).enabled).toBe(false);
    expect((await apiKey(String(successor?.keyId))).enabled).toBe(true);
    expect(await keysOf(customer)).toEqual(expect.arrayContaining([{ keyId: firstKey, state: 'DISABLED' }]));
    expect(await sentEmailsTo(stack.endpoint, address)).toHaveLength(3);

    // Act + Assess: nothing is left to rotate then
    const after = await keyplan('jobs', 'run', 'rotate-keys', '--at', in100Days, '--dry-run', '--json');
    expect(after.json).toMatchObject({ report: { due: { keys: [], totalDue: 0 } } });
  });

  it('reconciles as of --at: a dry run finds a key out of its plan, the run puts it back', async () => {
    // Prepare: a key that drifted out of its plan, judged two hours from now
    const customer = unique('jobs-b');
    const keyId = await provision(customer);
    await aws.apiGateway.send(new DeleteUsagePlanKeyCommand({ usagePlanId: stack.usagePlans.free, keyId }));
    const later = fromNow(0, 2);

    // Act + Assess: the dry run finds it and changes nothing
    const dry = await keyplan('jobs', 'run', 'reconcile', '--at', later, '--dry-run', '--json');
    expect(dry.code).toBe(0);
    expect(dry.json).toMatchObject({
      job: 'reconcile',
      at: new Date(later).toISOString(),
      dryRun: true,
      report: { dryRun: true, at: new Date(later).toISOString(), found: { 'repair-plan': 1 }, done: { 'repair-plan': 0 }, failures: 0 },
    });
    expect(dry.json.report).toMatchObject({ actions: expect.arrayContaining([expect.objectContaining({ kind: 'repair-plan', keyId })]) });
    expect(await plansOfKey(aws.apiGateway, keyId)).toEqual([]);

    // Act + Assess: the run repairs it
    const run = await keyplan('jobs', 'run', 'reconcile', '--at', later, '--json');
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({ report: { dryRun: false, done: { 'repair-plan': 1 }, failures: 0 } });
    expect(await plansOfKey(aws.apiGateway, keyId)).toEqual([stack.usagePlans.free]);
  });

  it('resumes a registration nobody finished once its resume time has come', async () => {
    // Prepare: a queued registration that no worker takes
    const customer = unique('jobs-c');
    const queued = await keyplan('provision', customer, '--email', `${customer}@example.com`, '--tier', 'free', '--async', '--json');
    expect(queued.json).toMatchObject({ outcome: 'queued', status: 'QUEUED' });
    const inAnHour = fromNow(0, 1);

    // Act + Assess: not due yet now (RESUME_AFTER_MINUTES); as of an hour later, a dry run lists it
    const now = await keyplan('jobs', 'run', 'resume-registrations', '--dry-run', '--json');
    expect(now.json).toMatchObject({ report: { registrations: [], interrupted: [] } });
    const dry = await keyplan('jobs', 'run', 'resume-registrations', '--at', inAnHour, '--dry-run', '--json');
    expect(dry.code).toBe(0);
    expect(dry.json).toMatchObject({
      job: 'resume-registrations',
      report: {
        batchSize: 100,
        registrations: [{ registrationId: customer, customerId: customer, state: 'QUEUED', resumeAttempts: 0, action: 'resume' }],
        interrupted: [],
      },
    });
    expect((await keyplan('status', '--registration', customer, '--json')).json).toMatchObject({ status: 'QUEUED' });

    // Act + Assess: the run provisions it through the saga: a key in the plan, emailed
    const run = await keyplan('jobs', 'run', 'resume-registrations', '--at', inAnHour, '--json');
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({
      report: {
        registrations: { resumed: 1, busy: 0, failed: 0, retryLater: 0, givenUp: 0 },
        interrupted: { finished: 0, failed: 0 },
      },
    });
    const registration = (await keyplan('status', '--registration', customer, '--json')).json;
    expect(registration).toMatchObject({ status: 'ACTIVE' });
    expect(await plansOfKey(aws.apiGateway, String(registration.keyId))).toEqual([stack.usagePlans.free]);
    expect(await sentEmailsTo(stack.endpoint, `${customer}@example.com`)).toHaveLength(1);
  });

  it('refuses a time without a zone before touching the stack', async () => {
    // Act
    const run = await keyplan('jobs', 'run', 'retire-keys', '--at', '2026-09-25T03:00:00', '--json');

    // Assess
    expect(run.code).toBe(2);
    expect(run.json).toMatchObject({ error: { code: 'usage' } });
    expect(run.stderr).not.toContain('using');
  });
});
