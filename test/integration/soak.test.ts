import { writeFile } from 'node:fs/promises';
import type { APIGatewayProxyResult, ScheduledEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { bootstrapLocalStack, functionEnvironment } from '../../infra/local/bootstrap';
import { localLambdaContext } from '../../infra/local/lambda-context';
import { startQueuePoller } from '../../infra/local/queue-poller';
import { createAwsClients } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { logger } from '../../shared/logger';
import { createCustomerDeps, createEnqueueDeps, createReadDeps, createRotationDeps } from '../../shared/wiring/compose';
import { changeTierRoutes } from '../../functions/change-tier/routes';
import { customerReadRoutes } from '../../functions/customer-reads/routes';
import { registerRoutes } from '../../functions/register/routes';
import { rotateCustomerRoutes } from '../../functions/rotate-customer/routes';
import { apiEvent, postRegistration } from '../support/api-events';
import { clientsAt, type TestClients } from '../support/aws-test-clients';
import { captureOutput } from '../support/capture-output';
import { createQueuePair, queueDepth } from '../support/emulator-probe';
import { FAULT_KINDS, type FaultProxy, mulberry32, startFaultProxy } from '../support/fault-proxy';
import { faultRules } from '../support/soak-faults';
import { problemCode, sendAsPortal } from '../support/retrying-portal';
import { allSentEmails, checkInvariants, collectKeyValues } from '../support/soak-invariants';

// Every line the service logs is checked for key values, so it logs all of them. The logger takes
// its level from the environment when first imported (and each invocation returns to that level):
// vi.hoisted sets it before any import.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
});

/*
 * The soak: a few hundred registrations (synchronous, and queued for the worker), tier changes and
 * rotations through keyplan's real handlers, with AWS_ENDPOINT_URL pointing at a fault proxy that
 * throttles, fails, drops connections and delays a share of every service's calls; then the
 * scheduled jobs and the reconciler with a clock months ahead, faults still on. Afterwards the
 * invariants are checked against the emulator directly and the figures printed.
 *
 * The table, the queues and the key name prefix are the soak's own, so integration tests running
 * beside it neither see nor disturb its keys and records (the reconciler judges only its prefix).
 */

const SEED = 7;
/** KEYPLAN_SOAK_PORTAL_CUSTOMERS sets the size (50 in npm test; `npm run soak` runs 300). */
const CUSTOMERS = Number(process.env.KEYPLAN_SOAK_PORTAL_CUSTOMERS ?? 50);
/** Parallel portal sessions. moto serializes requests; this overlaps the waits, not the work. */
const CONCURRENCY = 16;
/** The config minimum: an attempt a fault interrupted is taken over 5 s later. */
const LEASE_SECONDS = 5;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

const base = inject('localStack');
const direct: TestClients = clientsAt(base.endpoint, { region: base.region });
const prefix = `soak${process.pid}x${Date.now().toString(36)}`;
let proxy: FaultProxy;
let config: Config;
let queueUrl: string;
let dlqUrl: string;
let handlers: Awaited<ReturnType<typeof loadHandlers>>;


/**
 * The HTTP functions as one Lambda container each: the handler chain of functions/<name>/handler.ts
 * over clients of its own. Each portal session gets one, as each concurrent request in AWS gets a
 * container of its own (with its own SDK clients and adaptive rate limiter).
 */
function httpContainer() {
  return {
    register: httpHandler(registerRoutes(createEnqueueDeps(config))),
    customerReads: httpHandler(customerReadRoutes(createReadDeps(config))),
    changeTier: httpHandler(changeTierRoutes(createCustomerDeps(config))),
    rotateCustomer: httpHandler(rotateCustomerRoutes(createRotationDeps(config))),
  };
}
type HttpContainer = ReturnType<typeof httpContainer>;

/** The queue worker and the scheduled functions, one container each, imported once the environment points at the proxy. */
async function loadHandlers() {
  return {
    worker: (await import('../../functions/provision-worker/handler')).handler,
    rotateKeys: (await import('../../functions/rotate-keys/handler')).handler,
    retireKeys: (await import('../../functions/retire-keys/handler')).handler,
    reconcile: (await import('../../functions/reconcile/handler')).handler,
    resumeRegistrations: (await import('../../functions/resume-registrations/handler')).handler,
    finishOperations: (await import('../../functions/finish-operations/handler')).handler,
  };
}


beforeAll(async () => {
  proxy = await startFaultProxy({ target: base.endpoint, seed: SEED });
  const stack = await bootstrapLocalStack({ endpoint: base.endpoint, tableName: `keyplan-${prefix}` });
  ({ queueUrl, dlqUrl } = await createQueuePair(
    clientsAt(proxy.endpoint, { region: base.region }).sqs,
    `${prefix}-provisioning`,
    // Short, so a batch whose answer a fault swallowed comes back soon; longer than a batch takes.
    10,
  ));
  const env = {
    ...functionEnvironment(stack),
    AWS_ENDPOINT_URL: proxy.endpoint,
    QUEUE_URL: queueUrl,
    KEY_NAME_PREFIX: prefix,
    LEASE_SECONDS: String(LEASE_SECONDS),
    // The budget pacing has its own tests; here it would only stretch the run.
    MANAGEMENT_CALLS_PER_SECOND: '1000',
    ROTATION_BATCH_SIZE: '20',
    GRACE_DAYS: '7',
    REMINDER_DAYS: '2',
    KEY_RETENTION_DAYS: '30',
  };
  Object.assign(process.env, env);
  config = loadConfig(env);
  handlers = await loadHandlers();
  if (logger.getLevelName() !== 'DEBUG') throw new Error(`the service logs at ${logger.getLevelName()}, not DEBUG`);
});

afterAll(async () => {
  await proxy?.stop();
});

interface CustomerPlan {
  customerId: string;
  email: string;
  tier: string;
  async: boolean;
  /** The portal sends the registration twice at once (a double click). */
  doubleSubmit: boolean;
  newTier?: string;
  /** Rotate on demand with this grace (0: a leaked key, off at once). */
  rotationGraceDays?: number;
}

/** Each invocation gets the deployed function's timeout (serverless.yml), which middy enforces. */
const TIMEOUT_SECONDS = {
  register: 20,
  customerReads: 28,
  changeTier: 28,
  rotateCustomer: 28,
  rotateKeys: 300,
  retireKeys: 300,
  resumeRegistrations: 300,
  finishOperations: 300,
  reconcile: 900,
};
let invocations = 0;
const contextOf = (name: keyof typeof TIMEOUT_SECONDS) =>
  localLambdaContext(name, `soak-${++invocations}`, TIMEOUT_SECONDS[name] * 1000);

/** CUSTOMERS customers, by tens: 3 queued, 3 tier changes, 3 rotations (1 racing a tier change), 1 double submit. */
function planCustomers(tiers: readonly string[]): CustomerPlan[] {
  const random = mulberry32(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  return Array.from({ length: CUSTOMERS }, (_, i) => {
    const tier = pick(tiers);
    const slot = i % 10;
    const customerId = `${prefix}-c${i}`;
    return {
      customerId,
      email: `${customerId}@example.com`,
      tier,
      async: slot <= 2,
      doubleSubmit: slot === 5,
      newTier: [2, 4, 7].includes(slot) ? pick(tiers.filter((t) => t !== tier)) : undefined,
      rotationGraceDays: [1, 4, 8].includes(slot) ? (Math.floor(i / 10) % 2 === 0 ? 0 : 7) : undefined,
    };
  });
}

interface OperationFigures {
  requests: number;
  attempts: number;
  succeeded: number;
  gaveUp: number;
  /** Attempts that ran longer than the lease: their claim or customer lock may have expired meanwhile. */
  overLease: number;
}

/** The non-zero counts of a job's report, `found.repair-plan 1` for nested ones. */
function counts(report: unknown, path = ''): string {
  const entries = Object.entries((report ?? {}) as Record<string, unknown>).flatMap(([name, value]) => {
    if (typeof value === 'number') return value === 0 || name === 'keyCeiling' ? [] : [`${path}${name} ${value}`];
    if (value && typeof value === 'object' && !Array.isArray(value)) return [counts(value, `${path}${name}.`)].filter(Boolean);
    return [];
  });
  return entries.join(', ') || (path ? '' : 'nothing to do');
}

describe('the soak', () => {
  it('keeps every invariant through a few hundred registrations, tier changes and rotations with faults on', async () => {
    const started = Date.now();
    const plans = planCustomers(Object.keys(config.tierMap));
    const figures: Record<string, OperationFigures> = {};
    const liveness: string[] = [];
    const pollerLines: string[] = [];
    const jobs: string[] = [];
    const keyValues = new Map<string, string>();
    /** The tier the portal last set for each customer: its registration's, then each tier change answered 200. */
    const portalTiers = new Map(plans.map((plan) => [plan.customerId, plan.tier]));
    const phases: string[] = [];
    let phaseStart = started;
    const phaseDone = (name: string) => {
      phases.push(`${name} ${Math.round((Date.now() - phaseStart) / 1000)} s`);
      phaseStart = Date.now();
    };

    /** One portal request, repeated as a portal would; what it took goes into the figures. */
    const portal = async (
      kind: string,
      subject: string,
      send: () => Promise<APIGatewayProxyResult>,
      repeatIf?: (response: APIGatewayProxyResult) => boolean,
    ) => {
      const f = (figures[kind] ??= { requests: 0, attempts: 0, succeeded: 0, gaveUp: 0, overLease: 0 });
      const timed = async () => {
        const start = Date.now();
        const response = await send();
        if (Date.now() - start > LEASE_SECONDS * 1000) f.overLease++;
        return response;
      };
      const result = await sendAsPortal(timed, { maxAttempts: 12, maxWaitMs: (LEASE_SECONDS + 1) * 1000, repeatIf });
      f.requests++;
      f.attempts += result.attempts;
      if (result.response.statusCode < 300) f.succeeded++;
      if (result.gaveUp) {
        f.gaveUp++;
        const { statusCode } = result.response;
        liveness.push(`${kind} of ${subject}: gave up after ${result.attempts} attempts (${statusCode} ${problemCode(result.response) ?? ''})`);
      }
      return result;
    };
    const body = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;
    const emailPending = (response: APIGatewayProxyResult) => body(response).status === 'EMAIL_PENDING';

    async function register(plan: CustomerPlan, http: HttpContainer): Promise<boolean> {
      const request = { customerId: plan.customerId, email: plan.email, tier: plan.tier };
      if (!plan.async) {
        const submissions = await Promise.all(
          Array.from({ length: plan.doubleSubmit ? 2 : 1 }, () =>
            portal('register (sync)', plan.customerId, () => http.register(postRegistration(request), contextOf('register')), emailPending),
          ),
        );
        const keyIds = new Set(submissions.map((s) => body(s.response).keyId));
        if (keyIds.size > 1) liveness.push(`register of ${plan.customerId}: two submissions answered two keys`);
        return submissions.every((s) => s.response.statusCode < 300);
      }
      const queued = await portal('register (async)', plan.customerId, () =>
        http.register(postRegistration(request, { Prefer: 'respond-async' }), contextOf('register')),
      );
      if (queued.response.statusCode >= 300) return false;
      // The portal follows the status URL until the registration is done.
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const status = await portal('status read', plan.customerId, () =>
          http.customerReads(
            apiEvent({ method: 'GET', resource: '/registrations/{id}', pathParameters: { id: plan.customerId } }),
            contextOf('customerReads'),
          ),
        );
        const state = status.response.statusCode === 200 ? body(status.response).status : undefined;
        // Done as far as the portal can tell: the key works, or the registration failed. An email
        // still owed is the resume sweep's job (checked below, after it ran).
        if (state === 'ACTIVE' || state === 'EMAIL_PENDING') return true;
        if (state === 'FAILED') return false;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      liveness.push(`register (async) of ${plan.customerId}: not finished within 120 s`);
      return false;
    }

    const changeTier = async (plan: CustomerPlan, tier: string, http: HttpContainer) => {
      const result = await portal('tier change', plan.customerId, () =>
        http.changeTier(
          apiEvent({
            method: 'PUT',
            resource: '/customers/{customerId}/tier',
            pathParameters: { customerId: plan.customerId },
            body: JSON.stringify({ tier }),
          }),
          contextOf('changeTier'),
        ),
      );
      if (result.response.statusCode === 200) portalTiers.set(plan.customerId, tier);
    };

    const rotate = (plan: CustomerPlan, graceDays: number, http: HttpContainer) =>
      portal(
        'rotation',
        plan.customerId,
        () =>
          http.rotateCustomer(
            apiEvent({
              method: 'POST',
              resource: '/customers/{customerId}/rotations',
              pathParameters: { customerId: plan.customerId },
              body: JSON.stringify({ graceDays }),
            }),
            contextOf('rotateCustomer'),
          ),
        // A key another attempt was still working on was skipped: ask again.
        (response) => (body(response).rotations as { outcome: string }[]).some((r) => r.outcome === 'skipped'),
      );

    async function customerStory(plan: CustomerPlan, http: HttpContainer) {
      if (!(await register(plan, http))) return;
      await Promise.all([
        plan.newTier ? changeTier(plan, plan.newTier, http) : undefined,
        plan.rotationGraceDays === undefined ? undefined : rotate(plan, plan.rotationGraceDays, http),
      ]);
    }

    /** A scheduled function; an invocation that throws is retried twice, as Lambda does for EventBridge. */
    async function scheduled<T>(name: string, at: number, invoke: (event: ScheduledEvent) => Promise<T>): Promise<T | undefined> {
      const event = {
        version: '0',
        id: `${name}-${at}`,
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account: '123456789012',
        time: new Date(at).toISOString(),
        region: base.region,
        resources: [],
        detail: {},
      } as ScheduledEvent;
      for (let invocation = 1; invocation <= 3; invocation++) {
        const start = Date.now();
        try {
          const report = await invoke(event);
          jobs.push(`${name} ${Math.round((Date.now() - start) / 1000)} s: ${counts(report)}`);
          return report;
        } catch (error) {
          jobs.push(`${name} invocation ${invocation} failed: ${(error as Error).name}: ${(error as Error).message}`);
        }
      }
      liveness.push(`${name} at ${event.time}: every invocation failed`);
      return undefined;
    }

    let reconcileRuns = 0;
    const lines = await captureOutput(async () => {
      proxy.setRules(faultRules(Date.now()));
      const poller = startQueuePoller({
        sqs: createAwsClients().sqs,
        queueUrl,
        handler: handlers.worker,
        concurrency: 2,
        // A message that failed comes back once the lease of the attempt it met has run out.
        retryDelaySeconds: LEASE_SECONDS + 1,
        region: base.region,
        log: (line) => pollerLines.push(line),
      });
      // The sweep runs on its schedule while the portal works, as deployed: it finishes the
      // operations that failed half way (their customers answer 409 until it has).
      let trafficDone = false;
      const sweeping = (async () => {
        while (!trafficDone) {
          await new Promise((resolve) => setTimeout(resolve, 2_000));
          // Both halves of the sweep, on their one schedule.
          const at = Date.now();
          await Promise.all([
            scheduled('resume-registrations', at, (event) => handlers.resumeRegistrations(event, contextOf('resumeRegistrations'))),
            scheduled('finish-operations', at, (event) => handlers.finishOperations(event, contextOf('finishOperations'))),
          ]);
        }
      })();
      try {
        let next = 0;
        try {
          await Promise.all(
            Array.from({ length: CONCURRENCY }, async () => {
              const container = httpContainer();
              while (next < plans.length) await customerStory(plans[next++] as CustomerPlan, container);
            }),
          );
        } finally {
          trafficDone = true;
          await sweeping;
        }
        phaseDone('traffic');
        // Duplicates (a send repeated after its answer was lost) replay and leave the queue.
        const drained = Date.now() + 30_000;
        while ((await queueDepth(direct.sqs, queueUrl)) > 0 && Date.now() < drained) {
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      } finally {
        await poller.stop();
      }
      phaseDone('queue drained');
      await collectKeyValues(direct, prefix, keyValues);

      // The resume sweep takes up what no caller finished (an email still owed, above all). It
      // backs off per registration (doubling), so its runs here spread over days, until one finds
      // nothing left to do.
      for (const hours of [1, 2, 4, 8, 16, 32, 64, 128]) {
        const at = Date.now() + hours * HOUR_MS;
        const registrations = await scheduled('resume-registrations', at, (event) =>
          handlers.resumeRegistrations(event, contextOf('resumeRegistrations')),
        );
        const interrupted = await scheduled('finish-operations', at, (event) =>
          handlers.finishOperations(event, contextOf('finishOperations')),
        );
        const counts = registrations && interrupted ? [...Object.values(registrations), ...Object.values(interrupted)] : [];
        if (registrations && interrupted && counts.every((count) => count === 0)) break;
      }
      // Three months on: the daily rotation finds every key due and works through two batches;
      // the hourly retirement disables the rotated keys after their grace and deletes them later.
      // Deployed, the sweep runs every SWEEP_MINUTES: it finishes the rotations that failed or died
      // half way (an email SES refused leaves a must-finish lease, which only the sweep may take;
      // until it has, retirement and the reconciler find the customer busy).
      const sweep = (at: number) =>
        Promise.all([
          scheduled('resume-registrations', at, (event) => handlers.resumeRegistrations(event, contextOf('resumeRegistrations'))),
          scheduled('finish-operations', at, (event) => handlers.finishOperations(event, contextOf('finishOperations'))),
        ]);
      const t1 = Date.now() + 91 * DAY_MS;
      await scheduled('rotate-keys', t1, (event) => handlers.rotateKeys(event, contextOf('rotateKeys')));
      await sweep(t1 + 5 * 60_000);
      await scheduled('rotate-keys', t1 + DAY_MS, (event) => handlers.rotateKeys(event, contextOf('rotateKeys')));
      await sweep(t1 + DAY_MS + 5 * 60_000);
      await collectKeyValues(direct, prefix, keyValues);
      for (const at of [t1 + 9 * DAY_MS, t1 + 9 * DAY_MS + HOUR_MS, t1 + 40 * DAY_MS, t1 + 40 * DAY_MS + HOUR_MS]) {
        await scheduled('retire-keys', at, (event) => handlers.retireKeys(event, contextOf('retireKeys')));
      }
      phaseDone('scheduled jobs');

      // Hours later, every orphan is past the reconciler's safety age. It runs until it fails nothing.
      for (let at = t1 + 40 * DAY_MS + 4 * HOUR_MS; reconcileRuns < 8; at += HOUR_MS) {
        reconcileRuns++;
        // A customer the last run found busy holds a must-finish lease by now expired: the sweep's.
        if (reconcileRuns > 1) await sweep(at - 30 * 60_000);
        const report = await scheduled('reconcile', at, (event) => handlers.reconcile({ time: event.time }, contextOf('reconcile')));
        if (report && report.failures === 0 && report.busy === 0) break;
      }
      phaseDone('reconcile');
    });
    proxy.setRules([]);
    const proxyStats = proxy.stats();
    // To look into a failure: SOAK_LOG_FILE=/tmp/soak.log keeps every line the service logged.
    if (process.env.SOAK_LOG_FILE) await writeFile(process.env.SOAK_LOG_FILE, [...lines, ...jobs, ...pollerLines].join('\n'));

    await collectKeyValues(direct, prefix, keyValues);
    const invariants = await checkInvariants(
      direct,
      {
        tableName: config.tableName,
        keyNamePrefix: prefix,
        tierMap: config.tierMap,
        customers: new Map(plans.map((p) => [p.customerId, { email: p.email, tier: String(portalTiers.get(p.customerId)) }])),
        registrationIds: plans.map((p) => p.customerId),
      },
      { logLines: lines, keyValues, sentEmails: await allSentEmails(base.endpoint) },
    );
    const dlqDepth = await queueDepth(direct.sqs, dlqUrl);
    phaseDone('invariant checks');
    const violations = [
      ...invariants.violations,
      ...liveness,
      ...(dlqDepth > 0 ? [`the provisioning DLQ holds ${dlqDepth} message(s)`] : []),
    ];

    const redeliveries = pollerLines.reduce((sum, line) => sum + Number(/(\d+) back to the queue/.exec(line)?.[1] ?? 0), 0);
    const portalRetries = Object.values(figures).reduce((sum, f) => sum + f.attempts - f.requests, 0);
    const emulatorCalls = Object.values(proxyStats.calls).reduce((sum, n) => sum + n, 0);
    const faults = FAULT_KINDS.map((kind) => `${kind} ${proxyStats.faults[kind]}`).join(', ');
    const faultTotal = FAULT_KINDS.reduce((sum, kind) => sum + proxyStats.faults[kind], 0);
    const operationsRun = ['register (sync)', 'register (async)', 'tier change', 'rotation'].reduce(
      (sum, kind) => sum + (figures[kind]?.requests ?? 0),
      0,
    );
    const row = (cells: (string | number)[]) => cells.map((c, i) => (i === 0 ? String(c).padEnd(22) : String(c).padStart(9))).join('');
    console.log(
      [
        `keyplan soak: seed ${SEED}, ${Math.round((Date.now() - started) / 1000)} s, ${emulatorCalls} emulator calls through the fault proxy`,
        row(['operation', 'requests', 'attempts', 'ok', 'gave up', '> lease']),
        ...Object.entries(figures).map(([kind, f]) => row([kind, f.requests, f.attempts, f.succeeded, f.gaveUp, f.overLease])),
        `operations run: ${operationsRun} (+ ${jobs.length} scheduled job invocations, ${reconcileRuns} of them the reconciler)`,
        `retries: portal ${portalRetries}, SDK (seen by the proxy) ${proxyStats.sdkRetries}, queue redeliveries ${redeliveries}, transactions replayed by token ${proxyStats.replayedTransactions}; DLQ ${dlqDepth}`,
        `faults injected: ${faultTotal} (${faults}); unplanned upstream errors ${proxyStats.upstreamErrors}`,
        'jobs:',
        ...jobs.map((job) => `  ${job}`),
        `checked: ${Object.entries(invariants.checked).map(([what, n]) => `${n} ${what}`).join(', ')}`,
        `phases: ${phases.join(', ')}`,
        `invariant violations: ${violations.length}`,
        ...violations.map((v) => `  - ${v}`),
      ].join('\n'),
    );

    // Every customer registers, half of them change tier or rotate too (300 at 200 customers).
    expect(operationsRun).toBeGreaterThanOrEqual(CUSTOMERS * 1.5);
    // The capture saw the service's own log lines, down to info level.
    expect(lines.some((line) => line.includes('"message":"registration complete"'))).toBe(true);
    for (const kind of FAULT_KINDS) expect(proxyStats.faults[kind]).toBeGreaterThan(0);
    // Every failure the service met was one the proxy meant to inject.
    expect(proxyStats.upstreamErrors).toBe(0);
    expect(violations).toEqual([]);
  }, 300_000);
});
