import { GetApiKeyCommand, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { emulatorEmails } from '../../cli/console/emails';
import { type RunningConsole, startConsole } from '../../cli/console/server';
import { awsServices, type Services } from '../../cli/services';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { createQueuePair, plansOfKey } from '../support/emulator-probe';

// The console over a table, a key-name prefix and a queue pair of this file's own, so the numbers
// it shows are exactly what this file made, next to what the emulator holds.
const unique = (label: string) => `${label}${process.pid}x${Date.now().toString(36)}`;
let stack: LocalStack;
let aws: AwsClients;
let config: Config;
let services: Services;
let running: RunningConsole;
let queue: { queueUrl: string; dlqUrl: string };
const keyIds: Record<string, string> = {};
const prefix = unique('console');

beforeAll(async () => {
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-console-') });
  Object.assign(process.env, functionEnvironment(stack));
  aws = createAwsClients();
  queue = await createQueuePair(aws.sqs, unique('keyplan-console-queue-'));
  config = loadConfig({ ...functionEnvironment(stack), QUEUE_URL: queue.queueUrl, KEY_NAME_PREFIX: prefix, MANAGEMENT_CALLS_PER_SECOND: '500' });
  services = awsServices(config);
  for (const customerId of ['con-a', 'con-b']) {
    const { registration } = await provisionKey(
      { registrationId: `${customerId}-${prefix}`, request: { customerId, email: `${customerId}@example.com`, tier: 'free' }, now: new Date() },
      services.provisioning(),
    );
    keyIds[customerId] = String(registration.keyId);
  }
  await aws.sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: '{"waiting":1}' }));
  await aws.sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: '{"waiting":2}' }));
  await aws.sqs.send(new SendMessageCommand({ QueueUrl: queue.dlqUrl, MessageBody: '{"dead":1}' }));
  // Started once the keys exist: the console counts them as it starts and keeps the count a while.
  running = await startConsole({ services, config, stack: 'the test stack', emails: () => emulatorEmails(stack.endpoint) });
});

afterAll(async () => {
  await running?.close();
  services?.close();
  for (const client of Object.values(aws ?? {})) client.destroy();
});

const page = async (path: string) => {
  const response = await fetch(`${running.origin}${path}${path.includes('?') ? '&' : '?'}token=${running.token}`, { redirect: 'manual' });
  return { status: response.status, text: await response.text() };
};
const post = (path: string, fields: Record<string, string>) =>
  fetch(`${running.origin}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: running.token, ...fields }).toString(),
  });
const attribute = (html: string, testId: string, name: string) =>
  new RegExp(`data-testid="${testId}"[^>]*${name}="([^"]*)"`).exec(html)?.[1];
const stateCount = (html: string, state: string) => Number(new RegExp(`<tr data-state="${state}" data-count="(\\d+)">`).exec(html)?.[1]);

/** This file's keys as API Gateway holds them: enabled or not. */
async function emulatorKeys() {
  const { items = [] } = await aws.apiGateway.send(new GetApiKeysCommand({ nameQuery: prefix, limit: 500 }));
  return items.filter((key) => key.name?.startsWith(prefix));
}

async function queueAttribute(queueUrl: string) {
  const { Attributes = {} } = await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Attributes.ApproximateNumberOfMessages;
}

describe('keyplan console against the emulator', () => {
  it("shows the overview's numbers as the emulator holds them", async () => {
    const { status, text } = await page('/');
    const keys = await emulatorKeys();

    expect(status).toBe(200);
    expect(keys).toHaveLength(2);
    expect(attribute(text, 'key-gauge', 'data-used')).toBe(String(keys.length));
    expect(attribute(text, 'key-gauge', 'data-ceiling')).toBe('10000');
    expect(stateCount(text, 'ACTIVE')).toBe(keys.filter((key) => key.enabled).length);
    expect(attribute(text, 'queue-depth', 'data-queue')).toBe(await queueAttribute(queue.queueUrl));
    expect(attribute(text, 'queue-depth', 'data-dlq')).toBe(await queueAttribute(queue.dlqUrl));
    expect(attribute(text, 'queue-depth', 'data-dlq')).toBe('1');
    expect(text.match(/<rect data-day=/g)).toHaveLength(30);
  });

  it('rotates with the grace given, through a POST with the token', async () => {
    const response = await post('/customers/con-a/rotate', { graceDays: '0' });
    const after = await page(response.headers.get('location') ?? '');
    const old = await aws.apiGateway.send(new GetApiKeyCommand({ apiKey: keyIds['con-a'] }));
    const overview = await page('/');

    expect(response.status).toBe(303);
    expect(after.text).toMatch(/data-testid="flash"[^>]*data-outcome="ok"/);
    expect(old.enabled).toBe(false);
    expect(after.text.match(/<li data-key-id=/g)).toHaveLength(2);
    expect(after.text).toContain(`data-key-id="${keyIds['con-a']}" data-state="DISABLED"`);
    expect(stateCount(overview.text, 'ACTIVE')).toBe((await emulatorKeys()).filter((key) => key.enabled).length);
    expect(stateCount(overview.text, 'DISABLED')).toBe(1);
  });

  it("changes the tier, and the key moves to the new tier's plan", async () => {
    const response = await post('/customers/con-b/tier', { tier: 'pro' });
    const after = await page(response.headers.get('location') ?? '');

    expect(after.text).toContain('data-tier="pro"');
    expect(await plansOfKey(aws.apiGateway, keyIds['con-b']!)).toEqual([stack.usagePlans.pro]);
    expect(attribute(after.text, 'tier-history', 'data-count')).toBe('1');
  });

  it('refuses a page or an action without the token', async () => {
    const get = await fetch(`${running.origin}/`);
    const action = await fetch(`${running.origin}/customers/con-b/tier`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'tier=free',
    });

    expect([get.status, action.status]).toEqual([403, 403]);
    expect(await plansOfKey(aws.apiGateway, keyIds['con-b']!)).toEqual([stack.usagePlans.pro]);
  });

  it('lists the emails the emulator kept, key values hidden', async () => {
    const { status, text } = await page('/emails');

    expect(status).toBe(200);
    expect(text).toContain('con-a@example.com');
    expect(text).not.toMatch(/kp_[a-z0-9]{1,12}_[0-9A-Za-z]{33}/);
  });
});
