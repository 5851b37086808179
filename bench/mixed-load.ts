// Figure 6 (issue #13): everything that calls API Gateway's management API at once, through the
// proxy that enforces the account's budget (10/s, burst 40, 429 beyond it): a bulk import worked
// by the queue worker, the scheduled rotation over due keys, billing tier changes through their
// queue, and synchronous registrations at 1/s. Each function is built as its handler builds it
// (shared/provisioning/compose.ts) with its own clients, its environment and its container cap as
// serverless.yml deploys it (bench/deployed-functions.ts), so whatever pacing the functions apply
// is what is measured. Reported: management calls per 10 s window against the budget; requests
// that failed, by cause: API Gateway's throttling (429 after every retry: the only fault the bench
// injects), Lambda refusing a registration beyond register's concurrency cap, anything else; the
// synchronous registrations' p95 latency; the import's throughput against what its own share
// allows, and against what the other functions left of the budget (the static split's cost).
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { MiddlewareStack } from '@smithy/types';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { localLambdaContext } from '../infra/local/lambda-context';
import { startQueuePoller } from '../infra/local/queue-poller';
import { isThrottling } from '../shared/aws/aws-errors';
import { type AwsClients, createAwsClients } from '../shared/aws/clients';
import { type Config, loadConfig } from '../shared/config';
import { httpHandler } from '../shared/http/handler';
import { observe } from '../shared/observability';
import {
  createCustomerDeps,
  createEnqueueDeps,
  createProvisioningDeps,
  createRotationDeps,
  createWorkerDeps,
} from '../shared/wiring/compose';
import { type ImportRow, importRegistrations } from '../shared/provisioning/import-registrations';
import { provisionKey } from '../shared/provisioning/provision-key';
import { rotateDueKeys } from '../shared/rotation/rotation-jobs';
import { tierChangeBatchHandler } from '../functions/change-tier-events/batch';
import { provisioningBatchHandler } from '../functions/provision-worker/batch';
import { registerRoutes } from '../functions/register/routes';
import { clientsAt } from '../test/support/aws-test-clients';
import { createQueuePair, queueDepth } from '../test/support/emulator-probe';
import { attributeFailures, type FailureCause, failureFigures, FailureTally, importFigures, MANAGEMENT_CALLS_PER_REGISTRATION } from './budget-figures';
import { ACCOUNT_MANAGEMENT_BUDGET, startBudgetProxy } from './budget-proxy';
import { childMain, progress } from './child';
import { inParallel } from './queued-registrations';
import { matchDeployedQueue, readDeployedFunctions, STACK_ENVIRONMENT } from './deployed-functions';
import { figureStack } from './figure-stack';
import { figure, type Figure, median, percentile, round } from './stats';
import { busiestSlidingWindow, busiestWindow, callsBetween, callsPerWindow, limitLeftPerSecond } from './windows';

export interface MixedLoadInput {
  endpoint: string;
  /** Rows of the bulk import (the issue: 1,000). */
  importRows: number;
  /** Seeded keys due for rotation (the issue: 500). */
  rotations: number;
  /** Billing PlanChanged events, one per customer with one key (the issue: 100). */
  tierChanges: number;
  /** Synchronous registrations per second for as long as the rest runs (the issue: 1). */
  syncPerSecond: number;
  /** Default: twice the longest any function needs at its configured pace, plus two minutes. */
  timeoutSeconds?: number;
}

const FUNCTIONS = ['register', 'provisionWorker', 'rotateKeys', 'changeTierEvents'] as const;
type FunctionName = (typeof FUNCTIONS)[number];
/** The issue counts management calls per 10 s window. */
const WINDOW_MS = 10_000;
/** CreateApiKey and CreateUsagePlanKey; a tier change of one key is DeleteUsagePlanKey and CreateUsagePlanKey. */
const MANAGEMENT_CALLS_PER_ITEM = MANAGEMENT_CALLS_PER_REGISTRATION;
/**
 * Containers of a queue consumer whose trigger sets no MaximumConcurrency: Lambda starts by
 * polling a standard queue with five batches at once (and may scale further).
 */
const UNCAPPED_QUEUE_CONTAINERS = 5;

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
type HttpHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = { middlewareStack: MiddlewareStack<any, any> };

async function measureMixedLoad(input: MixedLoadInput): Promise<Figure[]> {
  const { endpoint, importRows, rotations, tierChanges, syncPerSecond } = input;
  const run = randomUUID().slice(0, 8);
  const { stack, env: figureEnv } = await figureStack(endpoint, 'mixed');
  const tiers = Object.keys(stack.usagePlans).sort();
  if (tiers.length < 2) throw new Error('the local stack needs two tiers for tier changes');
  const direct = directClients(endpoint);
  // Unpaced and unmeasured: the seeding and the checks afterwards are not the load.
  const unpaced = loadConfig({ ...figureEnv, MANAGEMENT_CALLS_PER_SECOND: '1000' });
  const inspector = createProvisioningDeps(unpaced, direct);

  // Customers with one key each, made by keyplan's own saga straight against the emulator: those
  // to rotate registered a rotation period and a day ago, so their keys are due now.
  const seedStarted = performance.now();
  const customer = (kind: string, n: number) => {
    const customerId = `${kind}-${run}-${n}`;
    return { customerId, email: `${customerId}@${run}.example.com`, tier: tiers[n % tiers.length]! };
  };
  const rotating = Array.from({ length: rotations }, (_, n) => customer('rot', n));
  const changing = Array.from({ length: tierChanges }, (_, n) => customer('tier', n));
  const dueSince = new Date(Date.now() - (unpaced.rotationDays + 1) * 86_400_000);
  await inParallel([...rotating.map((c) => ({ c, now: dueSince })), ...changing.map((c) => ({ c, now: new Date() }))], 8, async ({ c, now }) => {
    const { outcome } = await provisionKey({ registrationId: c.customerId, request: c, now }, inspector);
    if (outcome !== 'created') throw new Error(`seeding ${c.customerId}: ${outcome}`);
  });
  progress(`seeded ${rotations} customers due for rotation and ${tierChanges} to change tier in ${round((performance.now() - seedStarted) / 1000, 1)} s`);

  // From here on every function reaches AWS through the budget proxy.
  const { proxy, bucket, calls } = await startBudgetProxy(endpoint, ACCOUNT_MANAGEMENT_BUDGET);
  const viaProxy = clientsAt(proxy.endpoint);
  const provisioningQueue = await createQueuePair(viaProxy.sqs, `bench-mixed-${run}`);
  const tierQueue = await createQueuePair(viaProxy.sqs, `bench-mixed-tiers-${run}`);
  const stackEnv = { ...figureEnv, AWS_ENDPOINT_URL: proxy.endpoint, QUEUE_URL: provisioningQueue.queueUrl };
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  const deployed = await readDeployedFunctions(FUNCTIONS, { skip: new Set([...Object.keys(stackEnv), ...STACK_ENVIRONMENT]) });
  // The queues deliver as the deployed ones do: a batch paced slower than the bench queue's own
  // 30 s visibility would otherwise be delivered again to another container while still held.
  const visibilityTimeouts = {
    provisioning: await matchDeployedQueue(viaProxy.sqs, provisioningQueue.queueUrl, deployed.provisionWorker!.queue),
    tierChanges: await matchDeployedQueue(viaProxy.sqs, tierQueue.queueUrl, deployed.changeTierEvents!.queue),
  };
  const configs = Object.fromEntries(
    FUNCTIONS.map((name) => [name, loadConfig({ ...deployed[name]!.environment, ...stackEnv })]),
  ) as Record<FunctionName, Config>;
  const containers: Record<FunctionName, number | undefined> = {
    register: deployed.register!.concurrency,
    provisionWorker: deployed.provisionWorker!.concurrency ?? configs.provisionWorker.workerConcurrency,
    // One scheduled run at a time, as its schedule starts it.
    rotateKeys: 1,
    changeTierEvents: deployed.changeTierEvents!.concurrency ?? UNCAPPED_QUEUE_CONTAINERS,
  };
  const meters = Object.fromEntries(
    FUNCTIONS.map((name) => {
      const timeout = deployed[name]!.timeout;
      return [name, new FunctionMeter(name, timeout === undefined ? undefined : timeout * 1000)];
    }),
  ) as Record<FunctionName, FunctionMeter>;
  for (const name of FUNCTIONS) progress(`${name}: ${describeBudget(configs[name], containers[name])}`);

  // The functions, container by container, each as its handler module composes it.
  const registerPool = new LambdaPool<HttpHandler>(containers.register, () =>
    httpHandler(registerRoutes(meters.register.watch(createEnqueueDeps(configs.register, meters.register.clients())))),
  );
  const workers = Array.from({ length: containers.provisionWorker! }, () =>
    middy(provisioningBatchHandler(meters.provisionWorker.watch(createWorkerDeps(configs.provisionWorker, meters.provisionWorker.clients())))).use(observe()),
  );
  const tierHandlers = Array.from({ length: containers.changeTierEvents! }, () =>
    middy(tierChangeBatchHandler(meters.changeTierEvents.watch(createCustomerDeps(configs.changeTierEvents, meters.changeTierEvents.clients())))).use(observe()),
  );
  const rotationDeps = meters.rotateKeys.watch(createRotationDeps(configs.rotateKeys, meters.rotateKeys.clients()));
  // The operator's import runs on the operator's machine (npm run import): the stack's settings only.
  const importDeps = createEnqueueDeps(loadConfig(stackEnv), createAwsClients());

  const importCustomers = Array.from({ length: importRows }, (_, n) => customer('imp', n));
  const importIds = new Set(importCustomers.map((c) => c.customerId));
  const timeoutSeconds = input.timeoutSeconds ?? defaultTimeout({ importRows, rotations, tierChanges }, configs, containers);
  progress(`load: import of ${importRows}, rotation of ${rotations}, ${tierChanges} tier changes, ${syncPerSecond} registration/s (at most ${timeoutSeconds} s)`);

  // Everything starts at once.
  const t0 = Date.now();
  const started = performance.now();
  const seconds = () => Math.round((performance.now() - started) / 1000);
  let finished = false;

  const importWork = new QueueWork(importRows);
  const importRun = importRegistrations(rowsOf(importCustomers), importDeps, { concurrency: 8 }).then((summary) => {
    importWork.enqueued = true;
    return summary;
  });
  // Awaited once the load is over; until then a failure must not count as unhandled.
  importRun.catch(() => undefined);
  const workerPollers = workers.map((handler) =>
    startQueuePoller({
      sqs: viaProxy.sqs,
      queueUrl: provisioningQueue.queueUrl,
      handler: importWork.count(handler, meters.provisionWorker),
      concurrency: 1,
      batchSize: deployed.provisionWorker!.batchSize,
      region: stack.region,
    }),
  );

  const tierWork = new QueueWork(tierChanges);
  const tierSent = sendTierChanges(viaProxy, tierQueue.queueUrl, changing, tiers, run).then(() => {
    tierWork.enqueued = true;
  });
  tierSent.catch(() => undefined);
  const tierPollers = tierHandlers.map((handler) =>
    startQueuePoller({
      sqs: viaProxy.sqs,
      queueUrl: tierQueue.queueUrl,
      handler: tierWork.count(handler, meters.changeTierEvents),
      concurrency: 1,
      // As deployed: a batch of the trigger's size (more would overrun the timeout at the share).
      batchSize: deployed.changeTierEvents!.batchSize,
      region: stack.region,
    }),
  );

  // The rotation job: runs of its batch size back to back, as if its schedule fired again as soon
  // as a run ended, until no key is due or a run rotates nothing.
  const rotationRuns: { rotated: number; skipped: number; busy: number; failed: number; remaining: number }[] = [];
  const rotationRun = (async () => {
    while (!finished) {
      const { result: report, throttledCalls } = await meters.rotateKeys.invoke(() =>
        rotateDueKeys(new Date(), configs.rotateKeys.rotationBatchSize, rotationDeps),
      );
      const busy = (report as { busy?: number }).busy ?? 0;
      rotationRuns.push({ rotated: report.rotated, skipped: report.skipped, busy, failed: report.failed, remaining: report.remaining });
      meters.rotateKeys.operations += report.rotated + report.failed;
      meters.rotateKeys.failItems('rotation failed (stays due)', report.failed, throttledCalls);
      if (report.remaining === 0 || report.rotated === 0) return;
    }
  })();

  // Synchronous registrations: one every 1/syncPerSecond s, whether or not the last has answered.
  const sync: { latencyMs: number; status: number | 'lambda-throttled' }[] = [];
  const inFlight = new Set<Promise<void>>();
  let syncCount = 0;
  const syncTicker = setInterval(() => {
    const c = { ...customer('sync', syncCount++), tier: tiers[syncCount % tiers.length]! };
    const requestId = randomUUID();
    const sent = performance.now();
    const answered = registerPool
      .invoke((handler) =>
        meters.register.invoke(() => handler(registrationEvent(c, requestId), localLambdaContext('register', requestId, 28_000))),
      )
      .then((answer) => {
        const status = answer === 'throttled' ? 'lambda-throttled' : answer.result.statusCode;
        sync.push({ latencyMs: performance.now() - sent, status });
        meters.register.operations++;
        if (answer === 'throttled') meters.register.fail('lambda-cap', 'refused by Lambda at the reserved concurrency');
        // A request answered otherwise than 201 failed for throttling when one of its management
        // calls was answered 429 until keyplan's retries ran out.
        else if (status !== 201) meters.register.failItems(`HTTP ${status}`, 1, answer.throttledCalls);
      })
      .finally(() => inFlight.delete(answered));
    inFlight.add(answered);
  }, 1000 / syncPerSecond);

  const ticker = setInterval(
    () =>
      progress(
        `${seconds()} s: import ${importWork.acknowledged}/${importRows}, rotation runs ${rotationRuns.length} (${meters.rotateKeys.attempts.length} calls), ` +
          `tier changes ${tierWork.acknowledged}/${tierChanges}, registrations ${sync.length}; 429s ${bucket.refused}`,
      ),
    30_000,
  );
  const drained = (work: QueueWork, queueUrl: string) =>
    (async () => {
      while (!finished && !work.done) {
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        // A message that ends in the DLQ is never acknowledged: an empty queue ends the work too.
        if (work.enqueued && (await queueDepth(viaProxy.sqs, queueUrl).catch(() => -1)) === 0) return;
      }
    })();
  let timedOut = false;
  await Promise.race([
    Promise.all([
      Promise.race([importWork.finished, drained(importWork, provisioningQueue.queueUrl)]),
      Promise.race([tierWork.finished, drained(tierWork, tierQueue.queueUrl)]),
      rotationRun,
    ]),
    new Promise<void>((resolve) =>
      setTimeout(() => {
        timedOut = true;
        resolve();
      }, timeoutSeconds * 1000).unref(),
    ),
  ]);
  const tEnd = Date.now();
  finished = true;
  clearInterval(syncTicker);
  clearInterval(ticker);
  await Promise.all([...inFlight]);
  await Promise.all([...workerPollers, ...tierPollers].map((poller) => poller.stop()));
  const importSummary = await importRun;
  await tierSent;
  // A run still going after a timeout is left to end with the process; its calls come after tEnd.
  if (!timedOut) await rotationRun;
  const dlq = {
    provisioning: await queueDepth(viaProxy.sqs, provisioningQueue.dlqUrl),
    tierChanges: await queueDepth(viaProxy.sqs, tierQueue.dlqUrl),
  };
  await proxy.stop();
  // The import itself makes no management call (it writes the table and the queue).
  meters.provisionWorker.fail('other', 'import row failed to queue', importSummary.counts.failed);
  progress(`all done after ${round((tEnd - t0) / 1000, 1)} s${timedOut ? ' (timed out)' : ''}; 429s ${bucket.refused}`);

  // What the emulator holds now, read directly.
  const importActive = await countWhere([...importIds], async (id) => (await inspector.store.getRegistration(id))?.state === 'ACTIVE');
  const tiersApplied = await countWhere(changing.map((c, n) => ({ c, n })), async ({ c, n }) => {
    const found = await inspector.store.getCustomer(c.customerId);
    return found?.tier === tiers[(n + 1) % tiers.length];
  });
  const rotated = rotationRuns.reduce((sum, r) => sum + r.rotated, 0);
  const rotationsLeft = rotationRuns.at(-1)?.remaining ?? rotations;

  // Management calls per 10 s window, every caller together, as the account's budget saw them.
  const attempted = calls.all;
  const windows = callsPerWindow(attempted, t0, tEnd, WINDOW_MS);
  const admittedWindows = callsPerWindow(calls.admitted, t0, tEnd, WINDOW_MS);
  const busiest = busiestWindow(windows, WINDOW_MS);
  const budget = ACCOUNT_MANAGEMENT_BUDGET.ratePerSecond;

  // The import's throughput, against its own share and against what the budget left it while it ran.
  const importEnd = importWork.lastAcknowledgedAt ?? tEnd;
  const importSeconds = Math.max(0.001, (importEnd - t0) / 1000);
  const othersAdmitted = FUNCTIONS.filter((name) => name !== 'provisionWorker').reduce(
    (sum, name) => sum + callsBetween(meters[name].admitted, t0, importEnd),
    0,
  );
  const importPerSecond = importActive / importSeconds;
  const importLimit = limitLeftPerSecond({ budgetPerSecond: budget, seconds: importSeconds, othersAdmitted, callsPerItem: MANAGEMENT_CALLS_PER_ITEM });

  const latencies = sync.filter((s) => s.status !== 'lambda-throttled').map((s) => s.latencyMs);
  const failures = new FailureTally();
  for (const name of FUNCTIONS) {
    for (const [cause, count] of Object.entries(meters[name].tally.byCause)) failures.add(cause as FailureCause, name, count);
  }
  const unfinished = importRows - importActive + rotationsLeft + (tierChanges - tiersApplied);
  const attributed = FUNCTIONS.reduce((sum, name) => sum + meters[name].attempts.length, 0);

  const details = {
    sizes: { importRows, rotations, tierChanges, syncPerSecond },
    seconds: round((tEnd - t0) / 1000, 1),
    timedOut,
    timeoutSeconds,
    budget: ACCOUNT_MANAGEMENT_BUDGET,
    windowSeconds: WINDOW_MS / 1000,
    // Seconds, as deployed (undefined: the bench queue's own 30 s).
    queueVisibilityTimeouts: visibilityTimeouts,
    managementCalls: {
      attempted: attempted.length,
      admitted: calls.admitted.length,
      throttled429: calls.refused.length,
      // Calls the proxy saw that no function's clients made (should be 0).
      unattributed: attempted.length - attributed,
      busiestWindow: { index: busiest.index, attempted: busiest.calls, admitted: Math.max(0, ...admittedWindows) },
      busiestSlidingWindowAttempted: busiestSlidingWindow(attempted, WINDOW_MS),
      attemptedPerWindow: windows,
      admittedPerWindow: admittedWindows,
    },
    functions: Object.fromEntries(
      FUNCTIONS.map((name) => [name, meters[name].summary(configs[name], containers[name], t0, tEnd)]),
    ),
    register: {
      requests: sync.length,
      answered: Object.fromEntries(countBy(sync.map((s) => String(s.status)))),
      latencyMs: latencies.length > 0 ? summary(latencies) : null,
      containersStarted: registerPool.started,
    },
    import: {
      summary: importSummary.counts,
      active: importActive,
      seconds: round(importSeconds, 1),
      perSecond: round(importPerSecond, 3),
      share: describeBudget(configs.provisionWorker, containers.provisionWorker),
      shareLimitPerSecond: round(configs.provisionWorker.managementSharePerSecond / MANAGEMENT_CALLS_PER_ITEM, 3),
      othersAdmittedWhileImporting: othersAdmitted,
      limitLeftPerSecond: round(importLimit, 3),
      messagesReturnedToQueue: importWork.returned,
      dlq: dlq.provisioning,
    },
    rotation: { runs: rotationRuns, rotated, left: rotationsLeft },
    tierChanges: { applied: tiersApplied, messagesReturnedToQueue: tierWork.returned, dlq: dlq.tierChanges },
    unfinished: { importRowsNotActive: importRows - importActive, rotationsLeft, tierChangesNotApplied: tierChanges - tiersApplied },
    // Failed requests by cause (bench/budget-figures.ts) and, per function, by reason; the 429s
    // the account answered are in managementCalls (most are retried and succeed).
    failed: { total: failures.total, byCause: failures.byCause },
  };
  for (const name of FUNCTIONS) {
    const f = details.functions[name]!;
    progress(
      `${name}: ${f.managementCalls.attempted} management calls (${f.managementCalls.throttled429} answered 429), ` +
        `busiest window ${f.busiestWindowPerSecond}/s; longest invocation ${round(f.longestInvocationMs / 1000, 1)} s` +
        (f.invocationsOverTimeout > 0 ? ` (${f.invocationsOverTimeout} over its ${(f.timeoutMs ?? 0) / 1000} s timeout)` : '') +
        `; ${f.operations} requests, ${f.failed} failed` +
        (f.failed > 0 ? ` (${Object.entries(f.failures).map(([reason, n]) => `${reason}: ${n}`).join('; ')})` : ''),
    );
  }
  progress(
    `busiest window ${busiest.perSecond} calls/s; failed for API Gateway throttling ${failures.byCause['api-gateway-throttling']}, ` +
      `refused by Lambda ${failures.byCause['lambda-cap']}, other ${failures.byCause.other}; registration p95 ${details.register.latencyMs?.p95 ?? '—'} ms; ` +
      `import ${round(importPerSecond, 2)}/s of ${round(configs.provisionWorker.managementSharePerSecond / MANAGEMENT_CALLS_PER_ITEM, 2)}/s its share allows, ` +
      `${round(importLimit, 2)}/s the budget left unused`,
  );

  return [
    figure({
      id: 'mixed.management-calls',
      group: 6,
      label: 'Mixed load: management calls/s, busiest 10 s window',
      unit: 'calls/s',
      value: round(busiest.perSecond, 2),
      baseline: budget,
      // Every call that reached the account, refused ones included: what keyplan asked of it.
      target: { of: 'ratio', op: '<=', limit: 1, source: 'issue' },
      details,
    }),
    // Requests that failed for good, as their callers saw them (a synchronous registration not
    // answered 201 or refused by Lambda at the function's cap, a worker or tier-change message
    // returned to its queue, a rotation left due, an import row not queued), by cause: API
    // Gateway's throttling (the issue's target), Lambda's cap, anything else. The budget's 429s
    // are the only fault the bench injects.
    ...failureFigures(failures.byCause),
    figure({
      id: 'mixed.registration-p95',
      group: 6,
      label: 'Mixed load: synchronous registration, p95',
      unit: 'ms',
      value: latencies.length > 0 ? round(percentile(latencies, 95)) : Number.POSITIVE_INFINITY,
      baseline: null,
      // The issue asks for the figure, not a limit: a portal's user waits a second at most.
      target: { of: 'value', op: '<=', limit: 1000, source: 'bench' },
    }),
    // The import against what its share allows (the target), and against what the other
    // functions left of the account's budget while it ran (reported: the static split's cost).
    ...importFigures({
      achievedPerSecond: importPerSecond,
      sharePerSecond: configs.provisionWorker.managementSharePerSecond,
      unusedLimitPerSecond: importLimit,
    }),
    figure({
      id: 'mixed.unfinished',
      group: 6,
      label: 'Mixed load: work left undone (rows, rotations, tier changes)',
      unit: 'count',
      value: unfinished,
      baseline: null,
      target: { of: 'value', op: '=', limit: 0, source: 'bench' },
    }),
  ];
}

/** The invocation (a request, a batch, a job run) a management call belongs to. */
const invocation = new AsyncLocalStorage<{ throttledCalls: number }>();

/**
 * One function's API Gateway traffic, counted on its own clients below the SDK's retries and
 * keyplan's pacing (each attempt, when it was sent), and the requests it failed, by cause.
 */
class FunctionMeter {
  readonly attempts: number[] = [];
  readonly admitted: number[] = [];
  readonly throttled: number[] = [];
  /** Calls of the function's key gateway that failed for throttling after every retry. */
  portThrottleFailures = 0;
  operations = 0;
  readonly tally = new FailureTally();
  /** The longest invocation, and those longer than the function's deployed timeout (Lambda would have stopped them). */
  longestInvocationMs = 0;
  invocationsOverTimeout = 0;

  constructor(
    readonly name: FunctionName,
    /** The function's deployed timeout, when serverless.yml sets one. */
    readonly timeoutMs?: number,
  ) {}

  get failed(): number {
    return this.tally.total;
  }

  /** A container's clients (createAwsClients, as the handler's), with this meter on API Gateway's. */
  clients(): AwsClients {
    const clients = createAwsClients();
    for (const client of [clients.apiGateway, clients.apiGatewaySingleAttempt]) this.#attach(client);
    return clients;
  }

  #attach(client: AnyClient): void {
    client.middlewareStack.add(
      (next) => async (args) => {
        const at = Date.now();
        try {
          const result = await next(args);
          this.#record(at, (result.response as { statusCode?: number } | undefined)?.statusCode === 429);
          return result;
        } catch (error) {
          this.#record(at, isThrottling(error));
          throw error;
        }
      },
      // The deserialize step runs inside every finalizeRequest middleware (retries, pacing).
      { step: 'deserialize', priority: 'low', name: 'benchMeterManagementCalls' },
    );
  }

  #record(at: number, throttled: boolean): void {
    this.attempts.push(at);
    (throttled ? this.throttled : this.admitted).push(at);
  }

  /**
   * Runs one invocation, counting its key gateway calls that failed for throttling after every
   * retry: what decides whether its failures were throttling's (attributeFailures).
   */
  async invoke<T>(work: () => Promise<T>): Promise<{ result: T; throttledCalls: number }> {
    const settled = await this.invokeSettled(work);
    if (!settled.ok) throw settled.error;
    return settled;
  }

  /** As invoke, with a failed invocation's error returned instead of thrown; times it too. */
  async invokeSettled<T>(
    work: () => Promise<T>,
  ): Promise<({ ok: true; result: T } | { ok: false; error: unknown }) & { throttledCalls: number; ms: number }> {
    const store = { throttledCalls: 0 };
    const started = Date.now();
    const done = (ms: number) => {
      this.longestInvocationMs = Math.max(this.longestInvocationMs, ms);
      if (this.timeoutMs !== undefined && ms > this.timeoutMs) this.invocationsOverTimeout++;
      return { throttledCalls: store.throttledCalls, ms };
    };
    try {
      const result = await invocation.run(store, work);
      return { ok: true, result, ...done(Date.now() - started) };
    } catch (error) {
      return { ok: false, error, ...done(Date.now() - started) };
    }
  }

  /** The deps with their key gateway watched for calls that fail for throttling; otherwise untouched. */
  watch<D extends { keys: object }>(deps: D): D {
    const throttled = () => {
      this.portThrottleFailures++;
      const store = invocation.getStore();
      if (store) store.throttledCalls++;
    };
    const keys = new Proxy(deps.keys, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return function (this: unknown, ...args: unknown[]) {
          const result: unknown = value.apply(target, args);
          if (result instanceof Promise) {
            // Registered here, so the handler runs in the calling invocation's context.
            result.catch((error: unknown) => {
              if (causedByThrottling(error)) throttled();
            });
          }
          return result;
        };
      },
    });
    return { ...deps, keys };
  }

  fail(cause: FailureCause, reason: string, count = 1): void {
    this.tally.add(cause, reason, count);
  }

  /** `failed` items of one invocation, blamed on throttling as far as its throttled calls go. */
  failItems(reason: string, failed: number, throttledCalls: number): void {
    const { throttling, other } = attributeFailures(failed, throttledCalls);
    this.fail('api-gateway-throttling', reason, throttling);
    this.fail('other', reason, other);
  }

  summary(config: Config, containers: number | undefined, from: number, until: number) {
    const windows = callsPerWindow(this.attempts, from, until, WINDOW_MS);
    return {
      budget: describeBudget(config, containers),
      managementCalls: { attempted: this.attempts.length, admitted: this.admitted.length, throttled429: this.throttled.length },
      busiestWindowPerSecond: busiestWindow(windows, WINDOW_MS).perSecond,
      perSecondOverall: round(this.attempts.length / Math.max(0.001, (until - from) / 1000), 3),
      operations: this.operations,
      failed: this.failed,
      failedByCause: this.tally.byCause,
      failures: Object.fromEntries(this.tally.byReason),
      keyGatewayCallsFailedForThrottling: this.portThrottleFailures,
      longestInvocationMs: this.longestInvocationMs,
      timeoutMs: this.timeoutMs,
      invocationsOverTimeout: this.invocationsOverTimeout,
    };
  }
}

/** A queue consumer's progress: records acknowledged and returned, for the run's end and the figure. */
class QueueWork {
  acknowledged = 0;
  returned = 0;
  enqueued = false;
  lastAcknowledgedAt: number | undefined;
  readonly finished: Promise<void>;
  #resolve: () => void = () => undefined;

  constructor(readonly expected: number) {
    this.finished = new Promise((resolve) => (this.#resolve = resolve));
    if (expected === 0) this.#resolve();
  }

  get done(): boolean {
    return this.acknowledged >= this.expected;
  }

  count(handler: SqsHandler, meter: FunctionMeter): SqsHandler {
    return async (event, context) => {
      const settled = await meter.invokeSettled(() => handler(event, context));
      if (!settled.ok) {
        // A failed invocation returns every message of its batch to the queue.
        const name = settled.error instanceof Error ? settled.error.name : 'error';
        this.returned += event.Records.length;
        meter.operations += event.Records.length;
        meter.failItems(`invocation failed (${name}): its whole batch returned`, event.Records.length, settled.throttledCalls);
        throw settled.error;
      }
      const { result: response, throttledCalls } = settled;
      const failed = response.batchItemFailures.length;
      this.acknowledged += event.Records.length - failed;
      this.returned += failed;
      meter.operations += event.Records.length;
      meter.failItems('message returned to the queue', failed, throttledCalls);
      if (event.Records.length > failed) this.lastAcknowledgedAt = Date.now();
      if (this.done) this.#resolve();
      return response;
    };
  }
}

/**
 * Lambda's containers of one function: a request goes to an idle container (the most recently
 * used first), a new one starts when none is idle, and beyond the function's cap Lambda refuses
 * the request (throttling) instead of queueing it.
 */
class LambdaPool<H> {
  readonly #idle: H[] = [];
  started = 0;

  constructor(
    private readonly cap: number | undefined,
    private readonly create: () => H,
  ) {}

  async invoke<T>(work: (handler: H) => Promise<T>): Promise<T | 'throttled'> {
    let handler = this.#idle.pop();
    if (handler === undefined) {
      if (this.cap !== undefined && this.started >= this.cap) return 'throttled';
      handler = this.create();
      this.started++;
    }
    try {
      return await work(handler);
    } finally {
      this.#idle.push(handler);
    }
  }
}

/** A function's pace as its config sets it: per container, and at most for the function as a whole. */
function describeBudget(config: Config, containers: number | undefined): string {
  const { perContainer, burst, functionShare } = budgetOf(config);
  const cap = containers === undefined ? 'no container cap' : `${containers} container${containers === 1 ? '' : 's'}`;
  return `${round(perContainer, 3)} calls/s per container (burst ${burst}), ${cap}, function share ${round(functionShare, 3)}/s`;
}

/** A function's pace as its config sets it (MANAGEMENT_*: infra/serverless/management-budget.js). */
function budgetOf(config: Config) {
  const { managementSharePerSecond: functionShare, managementConcurrency: concurrency, managementBurst: burst } = config;
  return { functionShare, concurrency, perContainer: functionShare / concurrency, burst };
}

/** Twice the longest any function needs at the pace its config allows (the budget at most), plus two minutes. */
function defaultTimeout(
  sizes: { importRows: number; rotations: number; tierChanges: number },
  configs: Record<FunctionName, Config>,
  containers: Record<FunctionName, number | undefined>,
): number {
  const rate = (name: FunctionName) => {
    const { perContainer } = budgetOf(configs[name]);
    return Math.min(ACCOUNT_MANAGEMENT_BUDGET.ratePerSecond / 2, perContainer * (containers[name] ?? UNCAPPED_QUEUE_CONTAINERS));
  };
  const longest = Math.max(
    (sizes.importRows * MANAGEMENT_CALLS_PER_ITEM) / rate('provisionWorker'),
    (sizes.rotations * MANAGEMENT_CALLS_PER_ITEM) / rate('rotateKeys'),
    (sizes.tierChanges * MANAGEMENT_CALLS_PER_ITEM) / rate('changeTierEvents'),
  );
  return Math.ceil(2 * longest + 120);
}

/** Billing's PlanChanged events, as EventBridge puts them on the tier-change queue: each customer to the next tier. */
async function sendTierChanges(
  aws: ReturnType<typeof clientsAt>,
  queueUrl: string,
  customers: readonly { customerId: string }[],
  tiers: readonly string[],
  run: string,
): Promise<void> {
  const events = customers.map((c, n) => ({
    version: '0',
    id: `bench-${run}-${n}`,
    'detail-type': 'PlanChanged',
    source: 'billing.example',
    account: '123456789012',
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: [],
    detail: { customerId: c.customerId, tier: tiers[(n + 1) % tiers.length] },
  }));
  for (let start = 0; start < events.length; start += 10) {
    const batch = events.slice(start, start + 10);
    const answer = await aws.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch.map((event, i) => ({ Id: String(i), MessageBody: JSON.stringify(event) })) }),
    );
    if (answer.Failed?.length) throw new Error(`${answer.Failed.length} tier change events were not queued`);
  }
}

/** `POST /registrations` as API Gateway's proxy integration passes it to the register function. */
function registrationEvent(body: { customerId: string; email: string; tier: string }, requestId: string): APIGatewayProxyEvent {
  const headers = { 'content-type': 'application/json' };
  const now = Date.now();
  return {
    resource: '/registrations',
    path: '/registrations',
    httpMethod: 'POST',
    headers,
    multiValueHeaders: { 'content-type': [headers['content-type']] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {
      requestId,
      httpMethod: 'POST',
      path: '/local/registrations',
      resourcePath: '/registrations',
      stage: 'local',
      requestTime: new Date(now).toISOString(),
      requestTimeEpoch: now,
    } as APIGatewayProxyEvent['requestContext'],
  };
}

async function* rowsOf(customers: readonly { customerId: string; email: string; tier: string }[]): AsyncIterable<ImportRow> {
  for (const [i, c] of customers.entries()) yield { line: i + 2, fields: c };
}

/** Clients straight to the emulator in the shape keyplan's composition takes. */
function directClients(endpoint: string): AwsClients {
  const aws = clientsAt(endpoint);
  return {
    apiGateway: aws.apiGateway,
    apiGatewaySingleAttempt: clientsAt(endpoint, { maxAttempts: 1 }).apiGateway,
    dynamo: aws.dynamo,
    ses: aws.ses,
    sqs: aws.sqs,
  };
}

function causedByThrottling(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isThrottling(e)) return true;
  }
  return false;
}

async function countWhere<T>(items: readonly T[], test: (item: T) => Promise<boolean>): Promise<number> {
  let count = 0;
  await inParallel(items, 8, async (item) => {
    if (await test(item)) count++;
  });
  return count;
}

function countBy(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

function summary(samples: number[]) {
  return {
    median: round(median(samples)),
    p95: round(percentile(samples, 95)),
    min: round(Math.min(...samples)),
    max: round(Math.max(...samples)),
  };
}

await childMain(measureMixedLoad);
