import { GetUsageCommand } from '@aws-sdk/client-api-gateway';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { meterCalls } from '../../infra/local/emulator';
import { createAwsClients } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { createProvisioningDeps, createUsageDeps } from '../../shared/wiring/compose';
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

async function registerCustomer(): Promise<{ customerId: string; keyId: string | undefined }> {
  const customerId = unique('usage');
  const request = { customerId, email: `${customerId}@example.com`, tier: 'free' };
  const { registration } = await provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(config));
  return { customerId, keyId: registration.keyId };
}

describe('GET /customers/{customerId}/usage against the emulator', () => {
  it("answers 200 with a day per date for the customer's live key, in its plan; moto counts no usage, so every day is used 0, remaining null", async () => {
    const { customerId, keyId } = await registerCustomer();

    const response = await getUsage(customerId, { from: '2026-01-30', to: '2026-02-02' });

    expect(response.statusCode).toBe(200);
    expect(response.headers?.['content-type']).toBe('application/json');
    expect(parse(response)).toEqual({
      customerId,
      from: '2026-01-30',
      to: '2026-02-02',
      keys: [
        {
          keyId,
          state: 'ACTIVE',
          usagePlanId: stack.usagePlans.free,
          days: ['2026-01-30', '2026-01-31', '2026-02-01', '2026-02-02'].map((date) => ({ date, used: 0, remaining: null })),
        },
      ],
    });
  });

  it("serves GetUsage in AWS's shape, and AWS's NotFoundException for an unknown usage plan (our launcher adds the route moto lacks)", async () => {
    const apiGateway = createAwsClients().apiGateway;

    const usage = await apiGateway.send(
      new GetUsageCommand({ usagePlanId: stack.usagePlans.free, startDate: '2026-01-01', endDate: '2026-01-31' }),
    );
    const unknownPlan = apiGateway.send(
      new GetUsageCommand({ usagePlanId: 'no-such-plan', startDate: '2026-01-01', endDate: '2026-01-31' }),
    );

    expect(usage).toMatchObject({ usagePlanId: stack.usagePlans.free, startDate: '2026-01-01', endDate: '2026-01-31' });
    expect(Object.keys(usage.items ?? {})).toEqual([]);
    await expect(unknownPlan).rejects.toMatchObject({ name: 'NotFoundException', $fault: 'client' });
  });

  it("reports the calls API Gateway metered for the key, day by day, with the plan's quota left", async () => {
    const { customerId, keyId = '' } = await registerCustomer();
    const usagePlanId = String(stack.usagePlans.free);
    await meterCalls(stack.endpoint, { usagePlanId, keyId, date: '2026-03-02', calls: 40 });
    await meterCalls(stack.endpoint, { usagePlanId, keyId, date: '2026-03-02', calls: 2 });
    await meterCalls(stack.endpoint, { usagePlanId, keyId, date: '2026-03-04', calls: 7 });

    const response = await getUsage(customerId, { from: '2026-03-01', to: '2026-03-04' });

    expect((parse(response).keys as { days: unknown[] }[])[0]!.days).toEqual([
      // The free tier's quota is 1,000 calls a day (infra/tiers.json).
      { date: '2026-03-01', used: 0, remaining: 1000 },
      { date: '2026-03-02', used: 42, remaining: 958 },
      { date: '2026-03-03', used: 0, remaining: 1000 },
      { date: '2026-03-04', used: 7, remaining: 993 },
    ]);
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
