import { GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { createAwsClients } from '../../shared/aws/clients';
import { loadConfig } from '../../shared/config';
import { logger } from '../../shared/logger';
import { httpHandler } from '../../shared/http/handler';
import { createEnqueueDeps } from '../../shared/wiring/compose';
import { keyNameFor } from '../../shared/core/registration';
import { registerRoutes } from '../../functions/register/routes';
import { lambdaContext, postRegistration } from '../support/api-events';
import { captureOutput } from '../support/capture-output';
import { failAttempts } from '../support/emulator-probe';

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
});
