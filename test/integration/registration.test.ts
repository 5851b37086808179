import { GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { createAwsClients } from '../../shared/aws/clients';
import { loadConfig, type Config } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { createEnqueueDeps, createProvisioningDeps } from '../../shared/wiring/compose';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { keyNameFor } from '../../shared/core/registration';
import { registerRoutes } from '../../functions/register/routes';
import { lambdaContext, postRegistration } from '../support/api-events';
import {
  crashAfter,
  crashBefore,
  failAttempts,
  itemsOfCustomer,
  keysNamed,
  plansOfKey,
  sentEmailsTo,
  SimulatedCrash,
  wholeTable,
} from '../support/emulator-probe';

const stack = inject('localStack');
let config: Config;
const probe = () => createAwsClients();
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;

const parse = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;

/** A register handler over real emulator clients, optionally with faults injected into them. */
function registerHandler(inject?: (clients: ReturnType<typeof createAwsClients>) => void) {
  const clients = createAwsClients();
  inject?.(clients);
  return httpHandler(registerRoutes(createEnqueueDeps(config, clients)));
}

beforeAll(() => {
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig();
});

describe('POST /registrations against the emulator', () => {
  it('provisions an enabled key in exactly its tier plan, emails it once, and replays without a second key', async () => {
    const { handler } = await import('../../functions/register/handler');
    const customerId = unique('cust');
    const email = `${customerId}@example.com`;
    const body = { customerId, email, tier: 'pro', name: 'Ada' };

    const created = await handler(postRegistration(body), lambdaContext());

    expect(created.statusCode).toBe(201);
    const view = parse(created);
    expect(view).toMatchObject({ registrationId: customerId, customerId, tier: 'pro', status: 'ACTIVE' });
    const keyId = String(view.keyId);
    const aws = probe();
    const key = await aws.apiGateway.send(new GetApiKeyCommand({ apiKey: keyId, includeValue: true }));
    expect(key).toMatchObject({ enabled: true, customerId });
    expect(await plansOfKey(aws.apiGateway, keyId)).toEqual([stack.usagePlans.pro]);
    const emails = await sentEmailsTo(stack.endpoint, email);
    expect(emails).toHaveLength(1);
    expect(emails[0]?.body).toContain(key.value);

    const replay = await handler(postRegistration(body), lambdaContext());

    expect(replay.statusCode).toBe(200);
    expect(parse(replay).keyId).toBe(keyId);
    expect(await sentEmailsTo(stack.endpoint, email)).toHaveLength(1);
    expect(await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, customerId))).toHaveLength(1);
    const value = String(key.value);
    expect(created.body + replay.body).not.toContain(value);
    expect(JSON.stringify(await wholeTable(aws.dynamo, stack.tableName))).not.toContain(value);

    // What register wrote, read through the read function's handler, as API Gateway routes it.
    const { handler: reads } = await import('../../functions/customer-reads/handler');
    const status = await reads(
      { ...postRegistration(null), httpMethod: 'GET', resource: '/registrations/{id}', pathParameters: { id: customerId } },
      lambdaContext(),
    );
    expect(status.statusCode).toBe(200);
    expect(parse(status)).toMatchObject({ status: 'ACTIVE', keyId });
    const customer = await reads(
      { ...postRegistration(null), httpMethod: 'GET', resource: '/customers/{customerId}', pathParameters: { customerId } },
      lambdaContext(),
    );
    expect(customer.statusCode).toBe(200);
    expect(parse(customer)).toMatchObject({ customerId, tier: 'pro', status: 'ACTIVE', keys: [{ keyId, state: 'ACTIVE' }] });
    expect(customer.body).not.toContain(value);
  });

  it('creates exactly one key for 20 concurrent identical requests', async () => {
    const handler = registerHandler();
    const customerId = unique('burst');
    const body = { customerId, email: `${customerId}@example.com`, tier: 'free' };

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => handler(postRegistration(body, { 'Idempotency-Key': customerId }), lambdaContext())),
    );

    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.every((s) => [200, 201, 409].includes(s))).toBe(true);
    const aws = probe();
    const keys = await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, customerId));
    expect(keys).toHaveLength(1);
    expect(await plansOfKey(aws.apiGateway, String(keys[0]?.id))).toEqual([stack.usagePlans.free]);
    for (const busy of responses.filter((r) => r.statusCode === 409)) {
      expect(Number(busy.headers?.['retry-after'])).toBeGreaterThan(0);
    }
    expect(await sentEmailsTo(stack.endpoint, body.email)).toHaveLength(1);
  });

  it('answers 409 problem+json for the same Idempotency-Key with a different body', async () => {
    const handler = registerHandler();
    const customerId = unique('reuse');
    const headers = { 'Idempotency-Key': unique('idem') };
    await handler(postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'free' }, headers), lambdaContext());

    const reused = await handler(
      postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'pro' }, headers),
      lambdaContext(),
    );

    expect(reused.statusCode).toBe(409);
    expect(reused.headers?.['content-type']).toBe('application/problem+json');
    expect(parse(reused)).toMatchObject({ status: 409, type: 'urn:keyplan:problem:idempotency-key-reused' });
  });

  it('refuses a second registration id for a registered customer', async () => {
    const handler = registerHandler();
    const customerId = unique('twice');
    const body = { customerId, email: `${customerId}@example.com`, tier: 'free' };
    await handler(postRegistration(body, { 'Idempotency-Key': unique('first') }), lambdaContext());

    const second = await handler(postRegistration(body, { 'Idempotency-Key': unique('second') }), lambdaContext());

    expect(second.statusCode).toBe(409);
    expect(parse(second).type).toBe('urn:keyplan:problem:customer-already-registered');
  });
});

describe('a crash right after each saga step, then a retry', () => {
  type Clients = ReturnType<typeof createAwsClients>;
  // The crash lands right after the step's effect: after its call returns or, for the email
  // (whose errors the saga catches by design), just before the record write that follows it.
  const steps: [step: string, crash: (clients: Clients) => void, emails: number][] = [
    ['claim', (c) => crashAfter(c.dynamo, 'TransactWriteItemsCommand', 1), 1],
    ['create key', (c) => crashAfter(c.apiGatewaySingleAttempt, 'CreateApiKeyCommand'), 1],
    ['associate', (c) => crashAfter(c.apiGateway, 'CreateUsagePlanKeyCommand'), 1],
    // At-least-once: the retry cannot know the first copy went out, so it sends another.
    ['email', (c) => crashBefore(c.dynamo, 'TransactWriteItemsCommand', 2), 2],
    ['record', (c) => crashAfter(c.dynamo, 'TransactWriteItemsCommand', 2), 1],
  ];

  it.each(steps)('ends with one key in the right plan, one record and the email sent (crash after %s)', async (_step, crash, expectedEmails) => {
    const customerId = unique('crash');
    const email = `${customerId}@example.com`;
    const request = { customerId, email, tier: 'basic' };
    const crashing = createAwsClients();
    crash(crashing);
    const t0 = new Date();

    await expect(
      provisionKey({ registrationId: customerId, request, now: t0 }, createProvisioningDeps(config, crashing)),
    ).rejects.toBeInstanceOf(SimulatedCrash);

    // The retry comes after the crashed attempt's lease has run out (leases are the clock's).
    const later = new Date(t0.getTime() + (config.leaseSeconds + 1) * 1000);
    const result = await provisionKey(
      { registrationId: customerId, request, now: later },
      { ...createProvisioningDeps(config), clock: () => later },
    );

    expect(result.registration.state).toBe('ACTIVE');
    const aws = probe();
    const keys = await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, customerId));
    expect(keys).toHaveLength(1);
    expect(keys[0]?.enabled).toBe(true);
    expect(await plansOfKey(aws.apiGateway, String(keys[0]?.id))).toEqual([stack.usagePlans.basic]);
    const items = await itemsOfCustomer(aws.dynamo, stack.tableName, customerId);
    expect(items.filter((item) => String(item.sk).startsWith('KEY#'))).toEqual([
      expect.objectContaining({ keyId: keys[0]?.id, state: 'ACTIVE', usagePlanId: stack.usagePlans.basic }),
    ]);
    expect(await createProvisioningDeps(config).store.getRegistration(customerId)).toMatchObject({
      state: 'ACTIVE',
      keyId: keys[0]?.id,
    });
    const emails = await sentEmailsTo(stack.endpoint, email);
    expect(emails).toHaveLength(expectedEmails);
    expect(emails.every((m) => m.body.includes(String(keys[0]?.value)))).toBe(true);
  });
});

describe('when the usage plan refuses the key', () => {
  const notFound = () =>
    Object.assign(new Error('Invalid Usage Plan ID specified'), { name: 'NotFoundException', $metadata: { httpStatusCode: 404 } });

  it('deletes the key, records FAILED with the reason and answers 502 without internals', async () => {
    const handler = registerHandler((clients) => failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', notFound));
    const customerId = unique('rejected');

    const response = await handler(
      postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'free' }),
      lambdaContext(),
    );

    expect(response.statusCode).toBe(502);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(response.body).not.toMatch(/NotFoundException|Usage Plan ID|stack/i);
    const aws = probe();
    expect(await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, customerId))).toHaveLength(0);
    const registration = await createProvisioningDeps(config).store.getRegistration(customerId);
    expect(registration).toMatchObject({ state: 'FAILED', failureReason: 'association-rejected' });
    expect(await sentEmailsTo(stack.endpoint, `${customerId}@example.com`)).toHaveLength(0);
  });

  it('records the key as an orphan when the rollback delete fails too', async () => {
    const handler = registerHandler((clients) => {
      failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', notFound);
      failAttempts(clients.apiGateway, 'DeleteApiKeyCommand', () =>
        Object.assign(new Error('boom'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }),
      );
    });
    const customerId = unique('orphan');

    const response = await handler(
      postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'free' }),
      lambdaContext(),
    );

    expect(response.statusCode).toBe(502);
    const aws = probe();
    const [orphan] = await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, customerId));
    expect(orphan).toBeDefined();
    const registration = await createProvisioningDeps(config).store.getRegistration(customerId);
    expect(registration).toMatchObject({ state: 'FAILED', orphanKeyId: orphan?.id });
    const items = await itemsOfCustomer(aws.dynamo, stack.tableName, customerId);
    expect(items.filter((item) => String(item.sk).startsWith('KEY#'))).toEqual([
      expect.objectContaining({ keyId: orphan?.id, state: 'ORPHANED', dueType: 'CLEANUP' }),
    ]);
    // The claim reserved the customer; the failure gave it back: no key listed, nobody holding it.
    const profile = items.find((item) => item.sk === 'PROFILE');
    expect(profile).toMatchObject({ status: 'UNREGISTERED', keys: {} });
    expect(profile?.lease).toBeUndefined();
  });
});

describe('when API Gateway throttles', () => {
  const throttled = () =>
    Object.assign(new Error('Too Many Requests'), {
      name: 'TooManyRequestsException',
      $metadata: { httpStatusCode: 429 },
    });

  it('retries throttled calls itself', async () => {
    let attempts = { failed: 0, total: 0 };
    const handler = registerHandler((clients) => {
      attempts = failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', throttled, 2);
    });
    const customerId = unique('throttled');

    const response = await handler(
      postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'free' }),
      lambdaContext(),
    );

    expect(response.statusCode).toBe(201);
    expect(attempts).toEqual({ failed: 2, total: 3 });
  });

  it('answers 503 with Retry-After when retries run out, and a later retry completes the same registration', async () => {
    const exhausted = registerHandler((clients) => failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', throttled));
    const customerId = unique('exhausted');
    const body = { customerId, email: `${customerId}@example.com`, tier: 'free' };

    const refused = await exhausted(postRegistration(body), lambdaContext());

    expect(refused.statusCode).toBe(503);
    expect(Number(refused.headers?.['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers?.['content-type']).toBe('application/problem+json');

    const retried = await registerHandler()(postRegistration(body), lambdaContext());

    expect(retried.statusCode).toBe(201);
    const aws = probe();
    const keys = await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, customerId));
    expect(keys).toHaveLength(1);
    expect(parse(retried).keyId).toBe(keys[0]?.id);
    expect(await plansOfKey(aws.apiGateway, String(keys[0]?.id))).toEqual([stack.usagePlans.free]);
  });
});
