import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients';
import { regKey } from '../../shared/aws/table-keys';
import { type Config, loadConfig } from '../../shared/config';
import { createCustomerDeps, createEnqueueDeps, createResumeDeps } from '../../shared/wiring/compose';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import { enqueueRegistration } from '../../shared/provisioning/enqueue-registration';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { keyNameFor } from '../../shared/core/registration';
import { MAX_RESUME_ATTEMPTS, resumeStalledRegistrations } from '../../shared/provisioning/resume-registrations';
import { crashAfter, failAttempts, keysNamed, plansOfKey, sentEmailsTo } from '../support/emulator-probe';

// The sweep takes up every stalled registration of its table, so each test has a table of its own.
let stack: LocalStack;
let config: Config;
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;
const minutes = (from: Date, n: number) => new Date(from.getTime() + n * 60_000);

beforeEach(async () => {
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-resume') });
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig({ ...functionEnvironment(stack), RESUME_AFTER_MINUTES: '15' });
});

/** Starts a registration whose attempt dies as `kill` arranges; returns what the sweep must finish. */
async function stalledRegistration(kill: (clients: AwsClients) => void, now: Date) {
  const customerId = unique('stalled');
  const request = { customerId, email: `${customerId}@example.com`, tier: 'basic' };
  const clients = createAwsClients();
  kill(clients);
  await provisionKey({ registrationId: customerId, request, now }, createEnqueueDeps(config, clients)).catch(() => undefined);
  return { customerId, email: request.email };
}

const registrationOf = async (registrationId: string) =>
  createEnqueueDeps(config).store.getRegistration(registrationId);
const keysOf = (customerId: string) => keysNamed(createAwsClients().apiGateway, keyNameFor(config.keyNamePrefix, customerId));
// The sweep's schedule time is its clock here too: the registration's lease is a time of the clock.
const sweep = (now: Date) => resumeStalledRegistrations(now, 100, { ...createResumeDeps(config), clock: () => now });

describe('the resume sweep', () => {
  it('finishes a registration whose Lambda died after creating the key, with that key, once its time has come', async () => {
    const t0 = new Date();
    const { customerId, email } = await stalledRegistration(
      (clients) => crashAfter(clients.apiGatewaySingleAttempt, 'CreateApiKeyCommand'),
      t0,
    );
    expect(await registrationOf(customerId)).toMatchObject({ state: 'PENDING' });

    const early = await sweep(minutes(t0, 5));
    const due = await sweep(minutes(t0, 16));

    expect(early.resumed).toBe(0);
    expect(due).toMatchObject({ resumed: 1, retryLater: 0 });
    const registration = await registrationOf(customerId);
    expect(registration).toMatchObject({ state: 'ACTIVE' });
    const keys = await keysOf(customerId);
    expect(keys.map((key) => key.id)).toEqual([registration?.keyId]);
    expect(await plansOfKey(createAwsClients().apiGateway, String(registration?.keyId))).toEqual([stack.usagePlans.basic]);
    expect(await sentEmailsTo(stack.endpoint, email)).toHaveLength(1);
    expect((await sweep(minutes(t0, 60 * 24))).resumed).toBe(0);
  });

  it('sends the email an EMAIL_PENDING registration still owes', async () => {
    const t0 = new Date();
    const { customerId, email } = await stalledRegistration(
      (clients) =>
        failAttempts(clients.ses, 'SendEmailCommand', () =>
          Object.assign(new Error('Service unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } }),
        ),
      t0,
    );
    expect(await registrationOf(customerId)).toMatchObject({ state: 'EMAIL_PENDING' });

    expect(await sweep(minutes(t0, 16))).toMatchObject({ resumed: 1 });

    expect(await registrationOf(customerId)).toMatchObject({ state: 'ACTIVE' });
    const emails = await sentEmailsTo(stack.endpoint, email);
    expect(emails).toHaveLength(1);
    expect(emails[0]?.body).toContain(String((await keysOf(customerId))[0]?.value));
  });

  it('provisions a queued registration whose message never reached the queue', async () => {
    const t0 = new Date();
    const customerId = unique('queued');
    const request = { customerId, email: `${customerId}@example.com`, tier: 'free' };
    const clients = createAwsClients();
    failAttempts(clients.sqs, 'SendMessageCommand', () =>
      Object.assign(new Error('unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } }),
    );
    await expect(
      enqueueRegistration({ registrationId: customerId, request, now: t0 }, createEnqueueDeps(config, clients)),
    ).rejects.toThrow();
    expect(await registrationOf(customerId)).toMatchObject({ state: 'QUEUED' });

    expect(await sweep(minutes(t0, 16))).toMatchObject({ resumed: 1 });

    expect(await registrationOf(customerId)).toMatchObject({ state: 'ACTIVE' });
    expect(await keysOf(customerId)).toHaveLength(1);
  });

  it('backs off after each failed resume, and leaves a registration to an operator after the last', async () => {
    const t0 = new Date();
    const { customerId } = await stalledRegistration(
      (clients) => crashAfter(clients.apiGatewaySingleAttempt, 'CreateApiKeyCommand'),
      t0,
    );
    const failing = createAwsClients();
    failAttempts(failing.apiGateway, 'CreateUsagePlanKeyCommand', () =>
      Object.assign(new Error('unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } }),
    );
    const failingDeps = createResumeDeps(config, failing);
    const failingSweep = (now: Date) => resumeStalledRegistrations(now, 100, { ...failingDeps, clock: () => now });

    expect(await failingSweep(minutes(t0, 16))).toMatchObject({ retryLater: 1 });
    // The first resume doubled the wait: due again 30 minutes after it, not 15.
    expect(await failingSweep(minutes(t0, 16 + 20))).toMatchObject({ retryLater: 0, resumed: 0 });
    expect(await failingSweep(minutes(t0, 16 + 31))).toMatchObject({ retryLater: 1 });

    await createAwsClients().dynamo.send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: regKey(customerId),
        UpdateExpression: 'SET resumeAttempts = :max',
        ExpressionAttributeValues: { ':max': MAX_RESUME_ATTEMPTS },
      }),
    );
    const last = await sweep(minutes(t0, 60 * 24 * 30));
    expect(last).toMatchObject({ givenUp: 1, resumed: 0 });
    expect(await registrationOf(customerId)).toMatchObject({ state: 'PENDING' });
    expect((await sweep(minutes(t0, 60 * 24 * 60))).givenUp).toBe(0);
  });

  it('finishes a crashed re-activation of a revoked customer as a re-activation', async () => {
    const t0 = new Date();
    const customerId = unique('revived');
    const request = { customerId, email: `${customerId}@example.com`, tier: 'free' };
    await provisionKey({ registrationId: `${customerId}-1`, request, now: t0 }, createEnqueueDeps(config));
    await revokeCustomer({ customerId, now: t0 }, createCustomerDeps(config));
    const clients = createAwsClients();
    crashAfter(clients.apiGatewaySingleAttempt, 'CreateApiKeyCommand');
    await provisionKey(
      { registrationId: `${customerId}-2`, request: { ...request, reactivate: true }, now: t0 },
      createEnqueueDeps(config, clients),
    ).catch(() => undefined);

    expect(await sweep(minutes(t0, 16))).toMatchObject({ resumed: 1, failed: 0 });

    expect(await registrationOf(`${customerId}-2`)).toMatchObject({ state: 'ACTIVE' });
  });
});
