import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { apiEvent, lambdaContext, postRegistration } from '../support/api-events';
import { captureOutput } from '../support/capture-output';
import { failAttempts } from '../support/emulator-probe';
import { useLocalStack } from '../support/local-env';

/** One EMF document as CloudWatch reads it from a log line. */
interface EmfLine {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [field: string]: unknown;
}

function emfLines(lines: string[]): EmfLine[] {
  return lines.flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as Partial<EmfLine>;
      return parsed._aws?.CloudWatchMetrics ? [parsed as EmfLine] : [];
    } catch {
      return [];
    }
  });
}

/** Metric name -> sum of its values over the lines. */
function totals(lines: EmfLine[]): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of lines) {
    for (const { Name } of line._aws.CloudWatchMetrics[0]?.Metrics ?? []) {
      const value = line[Name];
      const values = Array.isArray(value) ? value : [value];
      sums[Name] = (sums[Name] ?? 0) + values.reduce((sum: number, v) => sum + Number(v), 0);
    }
  }
  return sums;
}

type Invoke = (event: APIGatewayProxyEvent, context: Context) => Promise<{ statusCode: number }>;

const unique = (label: string) => `${label}-${process.pid}-${Date.now()}`;

describe('metrics', () => {
  beforeAll(() => {
    useLocalStack();
    // The suite's default keeps other tests' output free of EMF; this one reads it. The metrics
    // module reads this once, on import, which happens below.
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    process.env.POWERTOOLS_SERVICE_NAME = 'keyplan-test';
  });

  it('are written as EMF lines to the function logs: provisioning, rollbacks, throttles, tier changes, key count', async () => {
    const { handler: register } = await import('../../functions/register/handler');
    const { handler: changeTier } = await import('../../functions/change-tier/handler');
    const { handler: reconcile } = await import('../../functions/reconcile/handler');
    const { httpHandler } = await import('../../shared/http/handler');
    const { registerRoutes } = await import('../../functions/register/routes');
    const { createEnqueueDeps } = await import('../../shared/wiring/compose');
    const { loadConfig } = await import('../../shared/config');
    const { createAwsClients } = await import('../../shared/aws/clients');

    const clients = createAwsClients();
    // One throttled attempt of the association (the SDK retries it), then a refusal for another.
    failAttempts(clients.apiGateway, 'GetUsagePlanCommand', () =>
      Object.assign(new Error('Too Many Requests'), { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } }),
      1,
    );
    const refusing = createAwsClients();
    failAttempts(refusing.apiGateway, 'CreateUsagePlanKeyCommand', () =>
      Object.assign(new Error('refused'), { name: 'BadRequestException', $metadata: { httpStatusCode: 400 } }),
    );
    const registerThrottled = httpHandler(registerRoutes(createEnqueueDeps(loadConfig(), clients))) as Invoke;
    const registerRefused = httpHandler(registerRoutes(createEnqueueDeps(loadConfig(), refusing))) as Invoke;

    const customer = unique('metrics');
    const statuses: number[] = [];
    const lines = await captureOutput(async () => {
      const body = (id: string) => ({ customerId: id, email: `${id}@example.com`, tier: 'free' });
      statuses.push((await (register as Invoke)(postRegistration(body(customer)), lambdaContext())).statusCode);
      statuses.push((await registerThrottled(postRegistration(body(`${customer}-t`)), lambdaContext())).statusCode);
      statuses.push((await registerRefused(postRegistration(body(`${customer}-r`)), lambdaContext())).statusCode);
      const move = apiEvent({
        method: 'PUT',
        resource: '/customers/{customerId}/tier',
        pathParameters: { customerId: customer },
        body: JSON.stringify({ tier: 'pro' }),
      });
      statuses.push((await (changeTier as Invoke)(move, lambdaContext())).statusCode);
      await reconcile({ dryRun: true }, lambdaContext());
    });

    expect(statuses).toEqual([201, 201, 502, 200]);
    const all = emfLines(lines);
    // Per-shard counts are a second series (dimensions service and shard) of counts the service
    // lines hold already; the totals are the service's.
    const byShard = all.filter((line) => line._aws.CloudWatchMetrics[0]?.Dimensions[0]?.includes('shard'));
    const emf = all.filter((line) => !byShard.includes(line));
    expect(emf.length).toBeGreaterThanOrEqual(5);
    for (const line of emf) {
      expect(line._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'keyplan', Dimensions: [['service']] });
      expect(line.service).toBe('keyplan-test');
    }
    for (const line of byShard) {
      expect(line._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'keyplan', Dimensions: [['service', 'shard']] });
      expect(line).toMatchObject({ service: 'keyplan-test', shard: 'home' });
    }
    expect(totals(byShard)).toMatchObject({ KeysProvisioned: 2 });
    expect(totals(emf)).toMatchObject({
      KeysProvisioned: 2,
      Rollbacks: 1,
      Throttles: 1,
      TierChanges: 1,
    });
    expect(totals(emf).AccountKeyCount).toBeGreaterThanOrEqual(2);
  });
});
