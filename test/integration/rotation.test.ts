import { GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { createAwsClients } from '../../shared/aws/clients';
import { DAY_MS } from '../../shared/aws/table-keys';
import { type Config, loadConfig } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { createProvisioningDeps, createResumeDeps, createRotationDeps } from '../../shared/wiring/compose';
import { finishInterruptedOperations } from '../../shared/sweep/finish-interrupted';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { type CustomerKey } from '../../shared/core/model';
import { keyNameFor } from '../../shared/core/registration';
import { rotateKey } from '../../shared/rotation/rotate-key';
import { retireDueKeys, rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import { rotateCustomerRoutes } from '../../functions/rotate-customer/routes';
import { apiEvent, lambdaContext } from '../support/api-events';
import {
  crashAfter,
  crashBefore,
  failAttempts,
  keysNamed,
  plansOfKey,
  sentEmailsTo,
  SimulatedCrash,
} from '../support/emulator-probe';

// Rotation runs over every due key of a table, so each test has a table of its own: keys made
// elsewhere must not be rotated here, nor these there.
let stack: LocalStack;
let config: Config;
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;
/** A fixed clock, under the test's control. */
const T0 = new Date('2031-01-01T00:00:00.000Z');
const at = (days: number, plusMs = 0) => new Date(T0.getTime() + days * DAY_MS + plusMs);

beforeEach(async () => {
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-rotation') });
  // The AWS clients read endpoint, region and credentials from the environment; the table comes
  // with the config, which every dependency here is built from.
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig({ ...functionEnvironment(stack), GRACE_DAYS: '7', REMINDER_DAYS: '2', KEY_RETENTION_DAYS: '30' });
});

/** Registers a customer at `when`; its key is due for rotation 90 days later. */
async function registerAt(when: Date, tier = 'basic') {
  const customerId = unique('rot');
  const request = { customerId, email: `${customerId}@example.com`, tier };
  const { registration } = await provisionKey({ registrationId: customerId, request, now: when }, createProvisioningDeps(config));
  return { customerId, email: request.email, keyId: String(registration.keyId) };
}

const keysOf = (customerId: string) => createRotationDeps(config).keyStore.keysOf(customerId);
const keyOf = async (customerId: string, keyId: string): Promise<CustomerKey | undefined> =>
  (await keysOf(customerId)).find((key) => key.keyId === keyId);
const successorName = (customerId: string, generation = 2) =>
  `${keyNameFor(config.keyNamePrefix, customerId)}-g${generation}`;
const apiKey = (keyId: string) =>
  createAwsClients()
    .apiGateway.send(new GetApiKeyCommand({ apiKey: keyId, includeValue: true }))
    .catch((error: { name?: string }) => (error.name === 'NotFoundException' ? undefined : Promise.reject(error)));

describe('scheduled rotation and retirement', () => {
  it('rotates a due key into the same plan, keeps the old one working through the grace period, then disables and deletes it', async () => {
    const due = await registerAt(T0);
    const notDue = await registerAt(at(10));
    const aws = createAwsClients();

    const run = await rotateDueKeys(at(90, 60_000), 50, createRotationDeps(config));

    expect(run).toMatchObject({ rotated: 1, failed: 0, remaining: 0 });
    const [successor] = await keysNamed(aws.apiGateway, successorName(due.customerId));
    expect(successor?.enabled).toBe(true);
    expect(await plansOfKey(aws.apiGateway, String(successor?.id))).toEqual([stack.usagePlans.basic]);
    const emails = await sentEmailsTo(stack.endpoint, due.email);
    expect(emails).toHaveLength(2);
    expect(emails[1]?.body).toContain(String(successor?.value));
    expect(emails[1]?.body).toContain('stops working on 2031-04-08');
    expect(await keyOf(due.customerId, due.keyId)).toMatchObject({ state: 'RETIRING', successorKeyId: successor?.id });
    expect(await keyOf(due.customerId, String(successor?.id))).toMatchObject({ state: 'ACTIVE', generation: 2 });
    expect((await apiKey(due.keyId))?.enabled).toBe(true);
    expect(await keysOf(notDue.customerId)).toEqual([expect.objectContaining({ keyId: notDue.keyId, state: 'ACTIVE' })]);
    expect(await sentEmailsTo(stack.endpoint, notDue.email)).toHaveLength(1);

    // Two days before the grace ends: a reminder, the old key still works.
    const retireAt = new Date(String((await keyOf(due.customerId, due.keyId))?.retireAt));
    expect(await retireDueKeys(new Date(retireAt.getTime() - 2 * DAY_MS + 60_000), 100, createRotationDeps(config))).toMatchObject({
      reminded: 1,
      disabled: 0,
    });
    expect(await sentEmailsTo(stack.endpoint, due.email)).toHaveLength(3);
    expect((await apiKey(due.keyId))?.enabled).toBe(true);

    expect(await retireDueKeys(new Date(retireAt.getTime() + 60_000), 100, createRotationDeps(config))).toMatchObject({ disabled: 1 });
    expect((await apiKey(due.keyId))?.enabled).toBe(false);
    expect(await keyOf(due.customerId, due.keyId)).toMatchObject({ state: 'DISABLED' });

    expect(await retireDueKeys(new Date(retireAt.getTime() + 30 * DAY_MS + 60_000), 100, createRotationDeps(config))).toMatchObject({
      deleted: 1,
    });
    expect(await apiKey(due.keyId)).toBeUndefined();
    expect(await keyOf(due.customerId, due.keyId)).toMatchObject({ state: 'DELETED' });
    expect((await apiKey(String(successor?.id)))?.enabled).toBe(true);
    expect((await apiKey(notDue.keyId))?.enabled).toBe(true);
  });

  it('does not retire the old key when the new key cannot be emailed; the sweep finishes the job', async () => {
    const customer = await registerAt(at(100));
    const clients = createAwsClients();
    failAttempts(clients.ses, 'SendEmailCommand', () =>
      Object.assign(new Error('Daily message quota exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } }),
    );

    const failed = await rotateDueKeys(at(190, 60_000), 50, createRotationDeps(config, clients));

    expect(failed).toMatchObject({ rotated: 0, failed: 1, remaining: 1 });
    expect(await keyOf(customer.customerId, customer.keyId)).toMatchObject({ state: 'ACTIVE' });

    // Half done (a successor made, maybe delivered): the customer waits for the sweep, which alone
    // may take over and finishes the rotation with the same successor.
    expect(await rotateDueKeys(at(190, 120_000), 50, createRotationDeps(config))).toMatchObject({ rotated: 0, busy: 1 });
    const finished = await finishInterruptedOperations(at(190, 180_000), 10, createResumeDeps(config));

    expect(finished).toMatchObject({ finished: 1, failed: 0 });
    expect(await keysNamed(createAwsClients().apiGateway, successorName(customer.customerId))).toHaveLength(1);
    expect(await keyOf(customer.customerId, customer.keyId)).toMatchObject({ state: 'RETIRING' });
  });

  it('rotates each key once when two runs overlap', async () => {
    const customers = await Promise.all([registerAt(at(200)), registerAt(at(200)), registerAt(at(200))]);

    const [first, second] = await Promise.all([
      rotateDueKeys(at(290, 60_000), 50, createRotationDeps(config)),
      rotateDueKeys(at(290, 60_000), 50, createRotationDeps(config)),
    ]);

    expect((first?.rotated ?? 0) + (second?.rotated ?? 0)).toBe(3);
    for (const customer of customers) {
      expect(await keysNamed(createAwsClients().apiGateway, successorName(customer.customerId))).toHaveLength(1);
      expect(await sentEmailsTo(stack.endpoint, customer.email)).toHaveLength(2);
    }
  });

  it('handles at most one batch per run and reports how many remain due', async () => {
    await Promise.all([registerAt(at(300)), registerAt(at(300)), registerAt(at(300))]);

    expect(await rotateDueKeys(at(390, 60_000), 2, createRotationDeps(config))).toMatchObject({ rotated: 2, remaining: 1 });
    expect(await rotateDueKeys(at(390, 60_000), 2, createRotationDeps(config))).toMatchObject({ rotated: 1, remaining: 0 });
  });
});

describe('a crash right after each rotation step, then a rerun', () => {
  type Clients = ReturnType<typeof createAwsClients>;
  const steps: [step: string, crash: (clients: Clients) => void][] = [
    ['claim', (c) => crashAfter(c.dynamo, 'UpdateItemCommand')],
    ['create key', (c) => crashAfter(c.apiGatewaySingleAttempt, 'CreateApiKeyCommand')],
    ['associate', (c) => crashAfter(c.apiGateway, 'CreateUsagePlanKeyCommand')],
    ['email', (c) => crashBefore(c.dynamo, 'TransactWriteItemsCommand')],
    ['record', (c) => crashAfter(c.dynamo, 'TransactWriteItemsCommand')],
  ];

  it.each(steps)('leaves exactly one successor (crash after %s)', async (step, crash) => {
    const customer = await registerAt(at(400));
    const key = await keyOf(customer.customerId, customer.keyId);
    const crashing = createAwsClients();
    crash(crashing);
    const now = at(490);

    await expect(rotateKey(key as CustomerKey, { now, graceDays: 7 }, createRotationDeps(config, crashing))).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
    // The crashed attempt's lease runs out; the sweep finishes what it left, the next run the rest.
    const later = new Date(Date.now() + (config.leaseSeconds + 1) * 1000);
    await finishInterruptedOperations(now, 10, { ...createResumeDeps(config), clock: () => later });
    await rotateDueKeys(new Date(now.getTime() + 60_000), 50, createRotationDeps(config));

    const successors = await keysNamed(createAwsClients().apiGateway, successorName(customer.customerId));
    expect(successors).toHaveLength(1);
    expect(await plansOfKey(createAwsClients().apiGateway, String(successors[0]?.id))).toEqual([stack.usagePlans.basic]);
    expect(await keyOf(customer.customerId, customer.keyId)).toMatchObject({
      state: 'RETIRING',
      successorKeyId: successors[0]?.id,
    });
    const emails = await sentEmailsTo(stack.endpoint, customer.email);
    expect(emails.length).toBe(step === 'email' ? 3 : 2);
    expect(emails.at(-1)?.body).toContain(String(successors[0]?.value));
  });
});

describe('POST /customers/{customerId}/rotations', () => {
  const post = (customerId: string, body?: unknown): Promise<APIGatewayProxyResult> =>
    httpHandler(rotateCustomerRoutes(createRotationDeps(config)))(
      apiEvent({
        method: 'POST',
        resource: '/customers/{customerId}/rotations',
        pathParameters: { customerId },
        body: body === undefined ? null : JSON.stringify(body),
      }),
      lambdaContext(),
    );

  it('rotates now and, with a grace of 0, disables the leaked key as soon as the new one is emailed', async () => {
    const customer = await registerAt(new Date());

    const response = await post(customer.customerId, { graceDays: 0 });

    expect(response.statusCode).toBe(200);
    const body = JSON.parse(response.body) as { rotations: { outcome: string; oldKeyId: string; newKeyId: string }[] };
    expect(body.rotations).toEqual([expect.objectContaining({ outcome: 'rotated', oldKeyId: customer.keyId })]);
    expect((await apiKey(customer.keyId))?.enabled).toBe(false);
    expect(await keyOf(customer.customerId, customer.keyId)).toMatchObject({ state: 'DISABLED' });
    expect((await apiKey(String(body.rotations[0]?.newKeyId)))?.enabled).toBe(true);
    expect(response.body).not.toContain(String((await apiKey(String(body.rotations[0]?.newKeyId)))?.value));
  });

  it('answers 404 problem+json for an unknown customer and 400 for a bad grace', async () => {
    const unknown = await post(unique('nobody'));
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers?.['content-type']).toBe('application/problem+json');

    const bad = await post('cust-1', { graceDays: -1 });
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ field: 'graceDays' });
  });
});
