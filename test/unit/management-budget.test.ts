import { readFileSync } from 'node:fs';
import { APIGatewayClient, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import {
  ACCOUNT_BURST,
  ACCOUNT_CALLS_PER_SECOND,
  type FunctionBudget,
  managementSplit,
  splitBudget,
  WITHOUT_MANAGEMENT_CALLS,
} from '../../infra/serverless/management-budget.js';
import { createAwsClients } from '../../shared/aws/clients';
import { pacedClient, TokenBucket } from '../../shared/aws/management-budget';
import { loadConfig } from '../../shared/config';
import { createEnqueueDeps, createProvisioningDeps, createWorkerDeps } from '../../shared/wiring/compose';

interface ServerlessFunction {
  reservedConcurrency?: unknown;
  environment?: Record<string, unknown>;
  events?: { sqs?: { maximumConcurrency?: unknown } }[];
}

describe('TokenBucket', () => {
  it('lets a burst through at once and then paces to the rate', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const bucket = new TokenBucket(5, 2, () => Date.now());
      const granted: number[] = [];
      const takers = Array.from({ length: 6 }, () => bucket.take().then(() => granted.push(Date.now())));

      await vi.advanceTimersByTimeAsync(2_000);
      await Promise.all(takers);

      // 2 at once (the burst), then one every 200 ms (5 per second).
      expect(granted.slice(0, 2)).toEqual([0, 0]);
      const gaps = granted.slice(2).map((at, i) => at - (granted[i + 1] ?? 0));
      for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(199);
      expect(granted.at(-1)).toBeLessThanOrEqual(900);
    } finally {
      vi.useRealTimers();
    }
  });

  it('never exceeds the rate over a longer run', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const bucket = new TokenBucket(2.5, 1, () => Date.now());
      let taken = 0;
      const takers = Array.from({ length: 50 }, () => bucket.take().then(() => taken++));

      await vi.advanceTimersByTimeAsync(10_000);

      // One at once, then 2.5 per second for 10 s.
      expect(taken).toBe(26);
      await vi.advanceTimersByTimeAsync(20_000);
      await Promise.all(takers);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('pacedClient', () => {
  // The SDK loads parts of itself on a client's first call: with real timers, so that a loaded
  // machine cannot leave that load (and the call's timers) past the fake clock's advance.
  beforeAll(async () => {
    const warm = testClient();
    answerLocally(warm);
    await warm.send(new GetApiKeysCommand({}));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('paces every call sent through it, after the burst, and leaves the client itself unpaced', async () => {
    vi.useFakeTimers({ now: 0 });
    const client = testClient();
    const answeredAt = answerLocally(client);
    const paced = pacedClient(client, new TokenBucket(2, 1));

    const calls = [1, 2, 3].map(() => paced.send(new GetApiKeysCommand({})));
    const direct = client.send(new GetApiKeysCommand({}));
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all([...calls, direct]);

    // The direct call is not paced; the three through the view are: one at once, then 2 per second.
    expect(answeredAt).toEqual([0, 0, 500, 1000]);
    expect(budgetMiddlewareOn(client)).toBe(false);
  });

  it('paces each attempt, retries included: the wait sits below the SDK retry layer', async () => {
    vi.useFakeTimers({ now: 0 });
    const client = testClient({ maxAttempts: 3 });
    const answeredAt = answerLocally(client, { throttleFirst: 2 });
    const paced = pacedClient(client, new TokenBucket(0.1, 1));

    const call = paced.send(new GetApiKeysCommand({}));
    await vi.advanceTimersByTimeAsync(30_000);
    await call;

    // One token at once, then one every 10 s: far slower than the SDK's own backoff would retry.
    expect(answeredAt).toHaveLength(3);
    expect(answeredAt[1]).toBeGreaterThanOrEqual(10_000);
    expect(answeredAt[2]).toBeGreaterThanOrEqual(20_000);
  });
});

// The split of the account's budget among the functions (infra/serverless/management-budget.js),
// read by serverless.yml; test/integration/packaged-template.test.ts checks the packaged result.
describe('the management budget split', () => {
  const service = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'), {
    logLevel: 'silent',
  }) as {
    params: Record<string, Record<string, unknown>>;
    custom: Record<string, unknown>;
    functions: Record<string, ServerlessFunction>;
  };
  const paramsOf = (stage: string) => ({ ...service.params.default, ...service.params[stage] });
  const splitOf = (stage: string) =>
    splitBudget({
      managementCallsPerSecond: paramsOf(stage).managementCallsPerSecond,
      workerConcurrency: paramsOf(stage).workerConcurrency,
    });
  const total = (split: Record<string, FunctionBudget>) =>
    Object.values(split).reduce((sum, row) => sum + row.sharePerSecond, 0);

  it.each(['dev', 'prod'])(
    'in %s keeps all functions together within managementCallsPerSecond, all running at once',
    (stage) => {
      const budget = Number(paramsOf(stage).managementCallsPerSecond);
      const split = splitOf(stage);

      expect(budget).toBeLessThanOrEqual(ACCOUNT_CALLS_PER_SECOND);
      // Each container takes share / concurrency and at most concurrency containers run.
      expect(total(split)).toBeLessThanOrEqual(budget);
      for (const row of Object.values(split)) {
        expect(row.sharePerSecond).toBeGreaterThan(0);
        expect(Number.isInteger(row.concurrency) && row.concurrency >= 1).toBe(true);
        expect(Number.isInteger(row.burst) && row.burst >= 1).toBe(true);
      }
    },
  );

  it('keeps a share for synchronous registrations that no queue consumer can take', () => {
    const split = splitOf('prod');

    expect(split.register?.sharePerSecond).toBeGreaterThan(0);
    expect(split.register?.queue).toBe(false);
    // A cold container answers a registration (GetUsagePlan, CreateApiKey, CreateUsagePlanKey)
    // without waiting for tokens.
    expect(split.register?.burst).toBeGreaterThanOrEqual(3);
  });

  it("lets every container start with a full bucket within the account's burst of 40", () => {
    const split = splitOf('prod');

    const tokens = Object.values(split).reduce((sum, row) => sum + row.concurrency * row.burst, 0);
    expect(tokens).toBeLessThanOrEqual(ACCOUNT_BURST);
  });

  it.each([
    [0.5, 2],
    [1, 2],
    [3, 7],
    [7, 2],
    [9.9, 1000],
    [10, 2],
  ])('stays within a budget of %s calls/s with %s workers, never rounding up', (budget, workers) => {
    const split = splitBudget({ managementCallsPerSecond: budget, workerConcurrency: workers });

    expect(total(split)).toBeLessThanOrEqual(budget + 1e-9);
    expect(split.provisionWorker?.concurrency).toBe(workers);
  });

  it('gives out at most the whole budget, in percent', () => {
    const percents = Object.values(managementSplit({ workerConcurrency: 2 })).reduce((sum, row) => sum + row.percent, 0);

    expect(percents).toBeLessThanOrEqual(100);
  });

  it.each([
    [{ managementCallsPerSecond: 11, workerConcurrency: 2 }, /managementCallsPerSecond must be above 0 and at most 10/],
    [{ managementCallsPerSecond: 0, workerConcurrency: 2 }, /managementCallsPerSecond must be above 0/],
    [{ managementCallsPerSecond: 'ten', workerConcurrency: 2 }, /got "ten"/],
    [{ managementCallsPerSecond: 10, workerConcurrency: 1 }, /provisionWorker: concurrency must be a queue trigger's MaximumConcurrency from 2/],
  ])('refuses %j, which would fail the package', (params, message) => {
    expect(() => splitBudget(params)).toThrow(message);
  });

  it('is what serverless.yml gives every function: its cap, and its share, cap and burst as MANAGEMENT_*', () => {
    const split = splitOf('dev');
    const ref = (name: string, field: string) => `\${self:custom.managementBudget.${name}.${field}}`;

    expect(service.custom.managementBudget).toBe('${file(infra/serverless/management-budget.js):budget}');
    // Every function has its row, but those that make no management call (and no row).
    expect(Object.keys(service.functions).sort()).toEqual([...Object.keys(split), ...WITHOUT_MANAGEMENT_CALLS].sort());
    expect(WITHOUT_MANAGEMENT_CALLS.filter((name) => name in split)).toEqual([]);
    const wiring = (name: string, fn: ServerlessFunction) => ({
      share: fn.environment?.MANAGEMENT_SHARE_PER_SECOND,
      concurrency: fn.environment?.MANAGEMENT_CONCURRENCY,
      burst: fn.environment?.MANAGEMENT_BURST,
      reservedConcurrency: fn.reservedConcurrency,
      queueTriggerCaps: (fn.events ?? []).flatMap((event) => (event.sqs ? [event.sqs.maximumConcurrency] : [])),
      queue: split[name]?.queue,
    });
    const expected = (name: string) => ({
      share: ref(name, 'sharePerSecond'),
      concurrency: ref(name, 'concurrency'),
      burst: ref(name, 'burst'),
      // A queue consumer is capped by its trigger (one each), every other function by reservation.
      reservedConcurrency: split[name]?.queue ? undefined : ref(name, 'concurrency'),
      queueTriggerCaps: split[name]?.queue ? [ref(name, 'concurrency')] : [],
      queue: split[name]?.queue,
    });
    const functions = Object.entries(service.functions).filter(([name]) => !WITHOUT_MANAGEMENT_CALLS.includes(name));
    expect(Object.fromEntries(functions.map(([name, fn]) => [name, wiring(name, fn)]))).toEqual(
      Object.fromEntries(functions.map(([name]) => [name, expected(name)])),
    );
  });

  it('gives a function without management calls none of the budget: no MANAGEMENT_* settings, no cap from it', () => {
    const unpaced = WITHOUT_MANAGEMENT_CALLS.map((name) => {
      const fn = service.functions[name];
      return { name, settings: Object.keys(fn?.environment ?? {}).filter((key) => key.startsWith('MANAGEMENT_')), reserved: fn?.reservedConcurrency };
    });

    expect(unpaced).toEqual(WITHOUT_MANAGEMENT_CALLS.map((name) => ({ name, settings: [], reserved: undefined })));
  });
});

describe('pacing of the composed functions', () => {
  const environment = {
    TABLE_NAME: 'keyplan-test',
    TIER_MAP: '{"free":"plan-free"}',
    SENDER_EMAIL: 'keys@example.com',
    QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/keyplan-test-provisioning',
    MANAGEMENT_CALLS_PER_SECOND: '10',
    MANAGEMENT_SHARE_PER_SECOND: '4',
    MANAGEMENT_CONCURRENCY: '2',
    MANAGEMENT_BURST: '2',
  };

  beforeEach(() => {
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.useRealTimers();
  });

  it("paces register's saga to its share / concurrency, after its burst, both clients drawing on one bucket", async () => {
    vi.useFakeTimers({ now: 0 });
    const clients = createAwsClients();
    const answeredAt: number[] = [];
    answerLocally(clients.apiGateway, { into: answeredAt });
    answerLocally(clients.apiGatewaySingleAttempt, { into: answeredAt });
    const keys = createEnqueueDeps(loadConfig(environment), clients).keys.in(undefined);

    // Three CreateApiKey (the single-attempt client) and three CreateUsagePlanKey (the other).
    const calls = Array.from({ length: 6 }, (_, i) =>
      i % 2 === 0
        ? keys.ensureKey({ name: `keyplan-test-${i}`, customerId: 'cust-1', description: 'test', tags: {} }, { lookupFirst: false })
        : keys.addKeyToPlan('plan-free', `key-${i}`),
    );
    await vi.advanceTimersByTimeAsync(3_000);
    await Promise.all(calls);

    // 2 at once (MANAGEMENT_BURST), then 4 / 2 = 2 per second, both clients drawing on one bucket.
    expect(answeredAt).toEqual([0, 0, 500, 1000, 1500, 2000]);
  });

  it('changes none of the clients it is given: calls made on them directly are not paced', () => {
    const clients = createAwsClients();
    const config = loadConfig(environment);

    createProvisioningDeps(config, clients);
    createWorkerDeps(config, clients);
    createEnqueueDeps(config, clients);

    expect(budgetMiddlewareOn(clients.apiGateway)).toBe(false);
    expect(budgetMiddlewareOn(clients.apiGatewaySingleAttempt)).toBe(false);
  });
});

function testClient(options: { maxAttempts?: number } = {}): APIGatewayClient {
  return new APIGatewayClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, ...options });
}

const budgetMiddlewareOn = (client: APIGatewayClient) =>
  client.middlewareStack.identify().some((name) => name.startsWith('keyplanManagementBudget'));

/**
 * Answers every API Gateway call in process, below the retries and the pacing, and
 * records when each attempt got through: a new key, or, for the first `throttleFirst` attempts, a
 * 429 the SDK retries.
 */
function answerLocally(client: APIGatewayClient, options: { throttleFirst?: number; into?: number[] } = {}): number[] {
  const answeredAt = options.into ?? [];
  let attempts = 0;
  client.middlewareStack.add(
    () => async () => {
      answeredAt.push(Date.now());
      attempts++;
      if (attempts <= (options.throttleFirst ?? 0)) {
        throw Object.assign(new Error('Too Many Requests'), {
          name: 'TooManyRequestsException',
          $metadata: { httpStatusCode: 429 },
          $fault: 'client',
        });
      }
      return { output: { $metadata: {}, id: `key-${attempts}`, value: 'Zq3vR8sT1uW4xY7zA0bC2dE5fG9hJ6kL' }, response: {} };
    },
    // Above the deserializer (same step, higher priority): the answer is already an output.
    { step: 'deserialize', priority: 'high', name: 'answerLocally' },
  );
  return answeredAt;
}
