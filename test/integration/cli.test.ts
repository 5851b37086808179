import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DeleteUsagePlanKeyCommand, GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients';
import { plansOfKey, sentEmailsTo } from '../support/emulator-probe';

const run = promisify(execFile);

// The reconciler judges every key of its name prefix and every tracked item of its table, so this
// file has both to itself (and a queue of its own for --async): nothing another test file does
// shows up in its reports, and nothing here touches theirs.
const unique = (label: string) => `${label}${process.pid}x${Date.now().toString(36)}`;
const CUSTOMER = unique('cli-a');
const OTHER = unique('cli-b');
const QUEUED = unique('cli-q');
let stack: LocalStack;
let env: NodeJS.ProcessEnv;
let aws: AwsClients;
let queueUrl: string;

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed: --json promises exactly one JSON object there. */
  json: Record<string, unknown>;
}

/** `npx keyplan ARGS --json`, as an operator runs it: the bin shim, as a child process. */
async function keyplan(...args: string[]): Promise<CliRun> {
  let result: { code: number; stdout: string; stderr: string };
  try {
    const { stdout, stderr } = await run(process.execPath, ['cli/bin/keyplan.mjs', ...args, '--json'], {
      env,
      cwd: process.cwd(),
    });
    result = { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout: string; stderr: string };
    if (typeof failed.code !== 'number') throw error;
    result = { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
  expect(result.stdout.trim().split('\n'), `stdout of keyplan ${args.join(' ')}`).toHaveLength(1);
  expect(result.stderr, 'no stack trace').not.toMatch(/\n\s+at /);
  return { ...result, json: JSON.parse(result.stdout) as Record<string, unknown> };
}

const apiKey = (keyId: string) => aws.apiGateway.send(new GetApiKeyCommand({ apiKey: keyId, includeValue: true }));

beforeAll(async () => {
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-cli-') });
  // The test's own clients read the emulator's endpoint and credentials from the environment.
  Object.assign(process.env, functionEnvironment(stack));
  aws = createAwsClients();
  ({ QueueUrl: queueUrl = '' } = await aws.sqs.send(new CreateQueueCommand({ QueueName: unique('keyplan-cli-queue-') })));
  env = {
    ...process.env,
    ...functionEnvironment(stack),
    QUEUE_URL: queueUrl,
    KEY_NAME_PREFIX: unique('cli'),
  };
});

afterAll(async () => {
  await aws.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
  for (const client of Object.values(aws)) client.destroy();
});

describe('npx keyplan against the emulator', () => {
  it('drives a customer through provision, status, change-tier, rotate, revoke and reconcile', async () => {
    // Act: provision
    const provisioned = await keyplan('provision', CUSTOMER, '--email', `${CUSTOMER}@example.com`, '--tier', 'free');

    // Assess: a working key in the free plan, emailed; the output names it but never holds its value
    expect(provisioned.code).toBe(0);
    // Only the stack it uses: the use case's logs stay quiet, although this suite's environment asks for WARN.
    expect(provisioned.stderr).toBe(`keyplan provision: using the environment: table ${stack.tableName} in ${stack.region}\n`);
    expect(provisioned.json).toMatchObject({ outcome: 'created', registrationId: CUSTOMER, tier: 'free', status: 'ACTIVE' });
    const firstKey = String(provisioned.json.keyId);
    const { value } = await apiKey(firstKey);
    expect(value).toBeTruthy();
    expect(provisioned.stdout + provisioned.stderr).not.toContain(String(value));
    expect(await plansOfKey(aws.apiGateway, firstKey)).toEqual([stack.usagePlans.free]);
    expect(await sentEmailsTo(stack.endpoint, `${CUSTOMER}@example.com`)).toHaveLength(1);

    // Act + Assess: the same command again replays, with no second key
    const again = await keyplan('provision', CUSTOMER, '--email', `${CUSTOMER}@example.com`, '--tier', 'free');
    expect(again.code).toBe(0);
    expect(again.json).toMatchObject({ outcome: 'replayed', keyId: firstKey });

    // Act + Assess: status, by customer and by registration
    const status = await keyplan('status', CUSTOMER);
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({ customerId: CUSTOMER, tier: 'free', keys: [{ keyId: firstKey, state: 'ACTIVE' }] });
    const registration = await keyplan('status', '--registration', CUSTOMER);
    expect(registration.json).toMatchObject({ registrationId: CUSTOMER, status: 'ACTIVE', keyId: firstKey });

    // Act + Assess: change tier: the key leaves the free plan for the pro plan
    const changed = await keyplan('change-tier', CUSTOMER, 'pro');
    expect(changed.code).toBe(0);
    expect(changed.json).toEqual({
      customerId: CUSTOMER,
      from: 'free',
      to: 'pro',
      changed: true,
      keys: [{ keyId: firstKey, usagePlanId: stack.usagePlans.pro }],
    });
    expect(await plansOfKey(aws.apiGateway, firstKey)).toEqual([stack.usagePlans.pro]);

    // Act + Assess: rotate: a successor in the same (pro) plan, the old key retiring in 3 days
    const rotated = await keyplan('rotate', CUSTOMER, '--grace-days', '3');
    expect(rotated.code).toBe(0);
    expect(rotated.json).toMatchObject({ customerId: CUSTOMER, graceDays: 3, rotations: [{ outcome: 'rotated', oldKeyId: firstKey }] });
    const successor = String((rotated.json.rotations as { newKeyId: string }[])[0]?.newKeyId);
    expect(successor).not.toBe(firstKey);
    expect(await plansOfKey(aws.apiGateway, successor)).toEqual([stack.usagePlans.pro]);
    expect((await apiKey(successor)).enabled).toBe(true);
    const afterRotation = await keyplan('status', CUSTOMER);
    expect(afterRotation.json).toMatchObject({ tier: 'pro', status: 'ACTIVE' });
    expect(afterRotation.json.keys).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ keyId: firstKey, state: 'RETIRING' }),
        expect.objectContaining({ keyId: successor, state: 'ACTIVE' }),
      ]),
    );

    // Act + Assess: revoke: both keys disabled at once
    const revoked = await keyplan('revoke', CUSTOMER, '--yes');
    expect(revoked.code).toBe(0);
    expect(revoked.json).toMatchObject({ customerId: CUSTOMER, status: 'REVOKED' });
    expect([...(revoked.json.disabledKeyIds as string[])].sort()).toEqual([firstKey, successor].sort());
    expect((await apiKey(firstKey)).enabled).toBe(false);
    expect((await apiKey(successor)).enabled).toBe(false);
    expect((await keyplan('status', CUSTOMER)).json).toMatchObject({ status: 'REVOKED' });

    // Prepare: a second customer whose key drifted out of its plan (what a failed restore leaves)
    const other = await keyplan('provision', OTHER, '--email', `${OTHER}@example.com`, '--tier', 'basic');
    const otherKey = String(other.json.keyId);
    await aws.apiGateway.send(new DeleteUsagePlanKeyCommand({ usagePlanId: stack.usagePlans.basic, keyId: otherKey }));

    // Act + Assess: a dry run finds the drift and changes nothing
    const dry = await keyplan('reconcile', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.json).toMatchObject({
      dryRun: true,
      found: { 'delete-orphan': 0, 'repair-plan': 1, 'mark-missing': 0, 'close-orphan-record': 0 },
      done: { 'delete-orphan': 0, 'repair-plan': 0, 'mark-missing': 0, 'close-orphan-record': 0 },
      failures: 0,
      actions: [{ kind: 'repair-plan', keyId: otherKey, customerId: OTHER, fromPlans: [], toPlan: stack.usagePlans.basic }],
    });
    expect(await plansOfKey(aws.apiGateway, otherKey)).toEqual([]);

    // Act + Assess: the real run repairs it; the revoked customer's disabled keys are left alone
    const reconciled = await keyplan('reconcile');
    expect(reconciled.code).toBe(0);
    expect(reconciled.json).toMatchObject({ dryRun: false, done: { 'repair-plan': 1, 'delete-orphan': 0 }, failures: 0, busy: 0 });
    expect(await plansOfKey(aws.apiGateway, otherKey)).toEqual([stack.usagePlans.basic]);
    expect((await apiKey(firstKey)).enabled).toBe(false);
  });

  it('queues a registration with --async and answers QUEUED without making a key', async () => {
    // Act
    const queued = await keyplan('provision', QUEUED, '--email', `${QUEUED}@example.com`, '--tier', 'pro', '--async');

    // Assess
    expect(queued.code).toBe(0);
    expect(queued.json).toMatchObject({ outcome: 'queued', registrationId: QUEUED, status: 'QUEUED' });
    expect(queued.json.keyId).toBeUndefined();
    const { Attributes } = await aws.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    expect(Attributes?.ApproximateNumberOfMessages).toBe('1');
  });

  it('exits 3 with a JSON error for an unknown customer, 2 for an unknown tier, before any change', async () => {
    // Act
    const nobody = unique('nobody');
    const missing = await keyplan('status', nobody);
    const badTier = await keyplan('change-tier', OTHER, 'platinum');

    // Assess
    expect(missing.code).toBe(3);
    expect(missing.json).toMatchObject({ error: { code: 'not-found', exitCode: 3 } });
    expect(missing.stderr).toMatch(new RegExp(`^keyplan status: using [^\n]*\nkeyplan status: no customer ${nobody}\n$`));
    expect(badTier.code).toBe(2);
    expect(badTier.json).toMatchObject({ error: { code: 'validation-failed', field: 'tier', message: 'tier must be one of: free, basic, pro' } });
  });
});
