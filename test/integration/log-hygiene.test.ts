import { GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { createAwsClients } from '../../shared/aws/clients';
import { loadConfig } from '../../shared/config';
import { logger } from '../../shared/logger';
import { httpHandler } from '../../shared/http/handler';
import { createEnqueueDeps, createRotationDeps } from '../../shared/wiring/compose';
import { rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { runKeyplan } from '../../cli/run-keyplan';
import { keyNameFor } from '../../shared/core/registration';
import { registerRoutes } from '../../functions/register/routes';
import { apiEvent, lambdaContext, postRegistration } from '../support/api-events';
import { captureOutput } from '../support/capture-output';
import { failAttempts } from '../support/emulator-probe';
import { eventItemsOf, publishedDetailOf, typesOf } from '../support/lifecycle-events';
import { holdsKeyValue } from '../../shared/core/key-value';

const stack = inject('localStack');

describe('logs of a registration', () => {
  beforeAll(() => {
    Object.assign(process.env, functionEnvironment(stack));
    logger.setLogLevel('DEBUG');
  });
  afterEach(() => vi.restoreAllMocks());

  it('never hold the key value, on the happy path or when the email fails', async () => {
    const config = loadConfig();
    const clients = createAwsClients();
    failAttempts(clients.ses, 'SendEmailCommand', () =>
      Object.assign(new Error('Email address is not verified.'), { name: 'MessageRejected', $metadata: { httpStatusCode: 400 } }),
      1,
    );
    const { handler } = await import('../../functions/register/handler');
    const failingEmail = httpHandler(registerRoutes(createEnqueueDeps(config, clients)));
    const happy = `logs-${Date.now()}`;
    const emailFails = `logs-mail-${Date.now()}`;

    const lines = await captureOutput(async () => {
      await handler(postRegistration({ customerId: happy, email: `${happy}@example.com`, tier: 'free' }), lambdaContext());
      await handler(postRegistration({ customerId: happy, email: `${happy}@example.com`, tier: 'free' }), lambdaContext());
      await failingEmail(
        postRegistration({ customerId: emailFails, email: `${emailFails}@example.com`, tier: 'free' }),
        lambdaContext(),
      );
      await failingEmail(
        postRegistration({ customerId: emailFails, email: `${emailFails}@example.com`, tier: 'free' }),
        lambdaContext(),
      );
    });

    const values: string[] = [];
    for (const id of [happy, emailFails]) {
      const page = await createAwsClients().apiGateway.send(
        new GetApiKeysCommand({ nameQuery: keyNameFor(config.keyNamePrefix, id), includeValues: true }),
      );
      values.push(...(page.items ?? []).map((key) => String(key.value)));
    }
    expect(values).toHaveLength(2);
    expect(lines.some((line) => line.includes('registration complete'))).toBe(true);
    expect(lines.some((line) => line.includes('key email failed'))).toBe(true);
    for (const value of values) {
      expect(lines.filter((line) => line.includes(value))).toEqual([]);
    }
  });

  it('nor do the audit trail and `keyplan history`, which show every event of a customer whose key was rotated', async () => {
    const config = loadConfig();
    const { handler } = await import('../../functions/register/handler');
    const customerId = `logs-trail-${Date.now()}`;
    let stdout = '';

    const lines = await captureOutput(async () => {
      await handler(postRegistration({ customerId, email: `${customerId}@example.com`, tier: 'free' }), lambdaContext());
      await rotateCustomerKeys(customerId, { now: new Date(), graceDays: 7 }, createRotationDeps(config));
      const { handler: reads } = await import('../../functions/customer-reads/handler');
      const trail = await reads(
        { ...apiEvent({ method: 'GET', resource: '/customers/{customerId}/events', pathParameters: { customerId } }), queryStringParameters: { limit: '100' } },
        lambdaContext(),
      );
      expect(trail.statusCode).toBe(200);
      stdout += trail.body;
      for (const argv of [['history', customerId], ['history', customerId, '--json', '--verbose']]) {
        const code = await runKeyplan({
          argv,
          env: { ...process.env },
          cwd: process.cwd(),
          stdout: { write: (text: string) => (stdout += text) },
          stderr: process.stderr,
        });
        expect(code).toBe(0);
      }
    });

    const page = await createAwsClients().apiGateway.send(
      new GetApiKeysCommand({ nameQuery: keyNameFor(config.keyNamePrefix, customerId), includeValues: true }),
    );
    const values = (page.items ?? []).map((key) => String(key.value));
    // The registration's key and its successor; both emailed, so both are in the trail's events.
    expect(values).toHaveLength(2);
    expect(stdout).toContain('KeyRotated');
    expect(stdout.match(/"type":"KeyEmailed"/g)?.length).toBeGreaterThanOrEqual(2);
    for (const value of values) {
      expect(stdout).not.toContain(value);
      expect(lines.filter((line) => line.includes(value))).toEqual([]);
    }
  });
});

describe('lifecycle event items', () => {
  beforeAll(() => {
    Object.assign(process.env, functionEnvironment(stack));
  });

  it('never hold a key value, in the item, its detail or as published: registration, an owed email, rotation, retirement', async () => {
    const config = loadConfig();
    const clients = createAwsClients();
    failAttempts(clients.ses, 'SendEmailCommand', () =>
      Object.assign(new Error('Email address is not verified.'), { name: 'MessageRejected', $metadata: { httpStatusCode: 400 } }),
      1,
    );
    const register = httpHandler(registerRoutes(createEnqueueDeps(config, clients)));
    const customerId = `logs-events-${Date.now()}`;
    const body = { customerId, email: `${customerId}@example.com`, tier: 'free' };

    const lines = await captureOutput(async () => {
      // The email fails (EMAIL_PENDING), the repeated request sends it, a leak rotates the key at once.
      await register(postRegistration(body), lambdaContext());
      await register(postRegistration(body), lambdaContext());
      await rotateCustomerKeys(customerId, { now: new Date(), graceDays: 0 }, createRotationDeps(config));
    });

    const page = await createAwsClients().apiGateway.send(
      new GetApiKeysCommand({ nameQuery: keyNameFor(config.keyNamePrefix, customerId), includeValues: true }),
    );
    const values = (page.items ?? []).map((key) => String(key.value));
    expect(values).toHaveLength(2);
    const events = await eventItemsOf(clients.dynamo, stack.tableName, customerId);
    expect(typesOf(events)).toEqual(['KeyProvisioned', 'KeyEmailed', 'KeyRotated', 'KeyEmailed', 'KeyDisabled']);
    expect(events[1]?.detail).toMatchObject({ reason: 'owed' });
    for (const item of events) {
      for (const text of [JSON.stringify(item), JSON.stringify(item.detail), JSON.stringify(publishedDetailOf(item))]) {
        for (const value of values) expect(text).not.toContain(value);
        // Nothing of a key value's shape either, whatever key it would be.
        expect(holdsKeyValue(text)).toBe(false);
      }
    }
    for (const value of values) expect(lines.filter((line) => line.includes(value))).toEqual([]);
  });
});
