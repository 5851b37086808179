import type { APIGatewayProxyResult } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { type Config, loadConfig } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { createProvisioningDeps, createUsageDeps } from '../../shared/provisioning/compose';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { customerUsageRoutes } from '../../functions/customer-usage/routes';
import { apiEvent, lambdaContext } from '../support/api-events';

const stack = inject('localStack');
let config: Config;
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;

const parse = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;

beforeAll(() => {
  // The AWS clients read endpoint, region and credentials from the environment.
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig(functionEnvironment(stack));
});

const getUsage = (customerId: string, query: Record<string, string>): Promise<APIGatewayProxyResult> =>
  httpHandler(customerUsageRoutes(createUsageDeps(config)))(
    {
      ...apiEvent({ method: 'GET', resource: '/customers/{customerId}/usage', pathParameters: { customerId } }),
      queryStringParameters: query,
    },
    lambdaContext(),
  );

async function registerCustomer(): Promise<string> {
  const customerId = unique('usage');
  const request = { customerId, email: `${customerId}@example.com`, tier: 'free' };
  await provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(config));
  return customerId;
}

describe('GET /customers/{customerId}/usage against the emulator', () => {
  it('answers 501 problem+json for a registered customer: moto does not serve GetUsage', async () => {
    const customerId = await registerCustomer();

    const response = await getUsage(customerId, { from: '2026-01-01', to: '2026-01-31' });

    expect(response.statusCode).toBe(501);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(parse(response)).toMatchObject({
      type: 'urn:keyplan:problem:usage-unavailable',
      status: 501,
      detail: expect.stringMatching(/usage data is unavailable from this AWS endpoint/i),
    });
  });

  it('answers 400 naming the field for a bad range, before looking the customer up', async () => {
    const tooLong = await getUsage(unique('nobody'), { from: '2026-01-01', to: '2026-06-30' });
    const reversed = await getUsage(unique('nobody'), { from: '2026-02-01', to: '2026-01-01' });

    expect(tooLong.statusCode).toBe(400);
    expect(parse(tooLong)).toMatchObject({ field: 'to' });
    expect(reversed.statusCode).toBe(400);
    expect(parse(reversed)).toMatchObject({ field: 'from' });
  });

  it('answers 404 problem+json for an unknown customer', async () => {
    const response = await getUsage(unique('nobody'), { from: '2026-01-01', to: '2026-01-31' });

    expect(response.statusCode).toBe(404);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
  });
});
