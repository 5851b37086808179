// Figure 2: keyplan's own overhead on a fresh registration. `POST /registrations` through the local
// HTTP gateway (the register handler in this process, its middleware, validation and saga) against
// two baselines, all three in turn in one run, so a busy moment of a shared machine slows each:
// - the same five AWS calls made straight with the SDK (bench/bare-registration.ts,
//   BareRegistration): keyplan's code, with keyplan's choice of DynamoDB calls kept;
// - the minimal safe sequence (MinimalRegistration, issue #13): a conditional PutItem claim,
//   CreateApiKey, CreateUsagePlanKey, SendEmail and an UpdateItem on a table with a partition key
//   only: keyplan's code and its choice of DynamoDB calls together.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { MiddlewareStack } from '@smithy/types';
import { startHttpGateway } from '../infra/local/http-gateway';
import { BareRegistration, ensureOneKeyTable, MinimalRegistration } from './bare-registration';
import { childMain, progress } from './child';
import { figureStack } from './figure-stack';
import { figure, type Figure, median, percentile, round } from './stats';

interface OverheadInput {
  endpoint: string;
  samples: number;
  warmup: number;
}

async function measureOverhead({ endpoint, samples, warmup }: OverheadInput): Promise<Figure[]> {
  // Back-to-back registrations would wait for the register function's share of the management
  // budget: this figure measures the cost of a request, not the pacing (figures 4 and 6 do), so
  // the budget is lifted, as figure 5 does.
  const { stack, config } = await figureStack(endpoint, 'overhead', { MANAGEMENT_CALLS_PER_SECOND: '1000' });
  const tier = 'basic';
  const usagePlanId = stack.usagePlans[tier];
  if (!usagePlanId) throw new Error(`the local stack has no ${tier} plan`);
  const gateway = await startHttpGateway({ port: 0 });
  const settings = { usagePlanId, sender: config.senderEmail };
  const bare = new BareRegistration({ ...settings, tableName: config.tableName, keyNamePrefix: `${config.keyNamePrefix}-bare` });
  const minimalTable = `${config.tableName}-minimal`;
  await ensureOneKeyTable(minimalTable);
  const minimal = new MinimalRegistration({ ...settings, tableName: minimalTable, keyNamePrefix: `${config.keyNamePrefix}-min` });
  // Where each baseline's time goes, call by call (keyplan's own clients are the handler's).
  const timers = { sdk: new OperationTimer().attach(bare.clients), minimal: new OperationTimer().attach(minimal.clients) };
  const run = randomUUID().slice(0, 8);

  // The portal's side is node:http on a kept-alive connection: the lightest client Node has, so
  // the figure is the server's cost, not the measuring client's.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const paths = {
    http: async (n: number) => {
      const customerId = `http-${run}-${n}`;
      const { status, body } = await post(agent, `${gateway.url}/registrations`, {
        customerId,
        email: `${customerId}@example.com`,
        tier,
      });
      if (status !== 201) throw new Error(`POST /registrations answered ${status}: ${body}`);
    },
    sdk: (n: number) => timers.sdk.registration(() => bare.register(`bare-${run}-${n}`, tier)),
    minimal: (n: number) => timers.minimal.registration(() => minimal.register(`min-${run}-${n}`, tier)),
  };
  type Path = keyof typeof paths;
  const order: Path[] = ['http', 'sdk', 'minimal'];
  const elapsed: Record<Path, number[]> = { http: [], sdk: [], minimal: [] };
  const cpu: Record<Path, number[]> = { http: [], sdk: [], minimal: [] };
  const timed = async (path: Path, n: number) => {
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await paths[path](n);
    elapsed[path].push(performance.now() - started);
    const used = process.cpuUsage(cpuBefore);
    cpu[path].push((used.user + used.system) / 1000);
  };

  try {
    // Warm-up, not measured: module loading, JIT, connections, the plan limits cache.
    for (let n = 0; n < warmup; n++) for (const path of order) await paths[path](-1 - n);
    for (const timer of Object.values(timers)) timer.reset();
    for (let n = 0; n < samples; n++) {
      // Each path takes each place in the round in turn, which cancels any drift within a round.
      for (let i = 0; i < order.length; i++) await timed(order[(n + i) % order.length]!, n);
      if ((n + 1) % 100 === 0) progress(`${n + 1}/${samples} rounds`);
    }

    const { http, sdk } = elapsed;
    const min = elapsed.minimal;
    const overhead = (baseline: number[]) => ({
      median: round(median(http) - median(baseline)),
      p95: round(percentile(http, 95) - percentile(baseline, 95)),
    });
    const details = {
      samplesEach: samples,
      warmupEach: warmup,
      http: summary(http),
      sdk: summary(sdk),
      minimal: summary(min),
      perRequestOverheadMs: overhead(sdk),
      perRequestOverheadOverMinimalMs: overhead(min),
      // CPU this process spent per request (the emulator runs in another): the SDK's own work on
      // the baselines; the SDK's, the gateway's, keyplan's and the HTTP client's on the other.
      cpuMs: Object.fromEntries(order.map((path) => [path, { median: round(median(cpu[path])) }])),
      // Median wall time of each AWS call of the baselines, in the order made (`#2`: the second of
      // that operation in one registration): the sdk baseline makes keyplan's calls.
      baselineCallsMs: { sdk: timers.sdk.medians(), minimal: timers.minimal.medians() },
      minimalTable: `${minimalTable} (partition key pk only, no index)`,
    };
    progress(`median ${details.http.median} ms vs ${details.sdk.median} ms bare vs ${details.minimal.median} ms minimal`);
    progress(`p95 ${details.http.p95} ms vs ${details.sdk.p95} ms bare vs ${details.minimal.p95} ms minimal`);
    return [
      figure({
        id: 'overhead.median',
        group: 2,
        label: 'Overhead: POST /registrations vs bare SDK, median',
        unit: 'ms',
        value: round(median(http)),
        baseline: round(median(sdk)),
        target: { of: 'ratio', op: '<=', limit: 1.1, source: 'issue' },
        details,
      }),
      figure({
        id: 'overhead.p95',
        group: 2,
        label: 'Overhead: POST /registrations vs bare SDK, p95',
        unit: 'ms',
        value: round(percentile(http, 95)),
        baseline: round(percentile(sdk, 95)),
        // The issue sets the median's target only; the bench holds the p95 to the same.
        target: { of: 'ratio', op: '<=', limit: 1.1, source: 'bench' },
      }),
      figure({
        id: 'overhead.minimal.median',
        group: 2,
        label: 'Overhead: POST /registrations vs minimal sequence, median',
        unit: 'ms',
        value: round(median(http)),
        baseline: round(median(min)),
        target: { of: 'ratio', op: '<=', limit: 1.3, source: 'issue' },
      }),
      figure({
        id: 'overhead.minimal.p95',
        group: 2,
        label: 'Overhead: POST /registrations vs minimal sequence, p95',
        unit: 'ms',
        value: round(percentile(http, 95)),
        baseline: round(percentile(min, 95)),
        // Issue #13 states one ratio; the bench holds the p95 to it too.
        target: { of: 'ratio', op: '<=', limit: 1.3, source: 'bench' },
      }),
    ];
  } finally {
    agent.destroy();
    await gateway.close();
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = { middlewareStack: MiddlewareStack<any, any> };

/**
 * Times every call of the clients it is attached to (retries included), by operation and by its
 * place among that operation's calls in one registration: `TransactWriteItems#2` is the record.
 */
class OperationTimer {
  readonly #samples = new Map<string, number[]>();
  #seen = new Map<string, number>();

  attach(clients: readonly AnyClient[]): this {
    for (const client of clients) {
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const operation = String(context.commandName ?? '?').replace(/Command$/, '');
          const nth = (this.#seen.get(operation) ?? 0) + 1;
          this.#seen.set(operation, nth);
          const started = performance.now();
          try {
            return await next(args);
          } finally {
            const name = nth === 1 ? operation : `${operation}#${nth}`;
            let samples = this.#samples.get(name);
            if (!samples) this.#samples.set(name, (samples = []));
            samples.push(performance.now() - started);
          }
        },
        { step: 'initialize', priority: 'high', name: 'benchTimeCalls' },
      );
    }
    return this;
  }

  /** Runs one registration; its calls are numbered from the first. */
  async registration(work: () => Promise<void>): Promise<void> {
    this.#seen = new Map();
    await work();
  }

  reset(): void {
    this.#samples.clear();
    this.#seen = new Map();
  }

  medians(): Record<string, number> {
    return Object.fromEntries([...this.#samples].map(([name, samples]) => [name, round(median(samples))]));
  }
}

function post(agent: Agent, url: string, json: unknown): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function summary(samples: number[]) {
  return {
    median: round(median(samples)),
    p95: round(percentile(samples, 95)),
    min: round(Math.min(...samples)),
    max: round(Math.max(...samples)),
  };
}

await childMain(measureOverhead);
