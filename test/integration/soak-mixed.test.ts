import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { CreateApiKeyCommand, CreateUsagePlanCommand, CreateUsagePlanKeyCommand } from '@aws-sdk/client-api-gateway';
import type { APIGatewayProxyResult, ScheduledEvent, SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { bootstrapLocalStack, functionEnvironment } from '../../infra/local/bootstrap';
import { localLambdaContext } from '../../infra/local/lambda-context';
import { startQueuePoller } from '../../infra/local/queue-poller';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { changeTier } from '../../shared/customers/change-tier';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import { httpHandler } from '../../shared/http/handler';
import { logger } from '../../shared/logger';
import {
  createCustomerDeps,
  createEnqueueDeps,
  createProvisioningDeps,
  createReadDeps,
  createRotationDeps,
} from '../../shared/wiring/compose';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { keyNameFor } from '../../shared/core/registration';
import { rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { changeTierRoutes } from '../../functions/change-tier/routes';
import { customerReadRoutes } from '../../functions/customer-reads/routes';
import { registerRoutes } from '../../functions/register/routes';
import { revokeCustomerRoutes } from '../../functions/revoke-customer/routes';
import { rotateCustomerRoutes } from '../../functions/rotate-customer/routes';
import { apiEvent, postRegistration } from '../support/api-events';
import { clientsAt, type TestClients } from '../support/aws-test-clients';
import { captureOutput } from '../support/capture-output';
import { createQueuePair, queueDepth } from '../support/emulator-probe';
import { FAULT_KINDS, type FaultProxy, type FaultRule, mulberry32, startFaultProxy } from '../support/fault-proxy';
import { faultRules } from '../support/soak-faults';
import { gate } from '../support/gates';
import { problemCode, sendAsPortal } from '../support/retrying-portal';
import {
  allSentEmails,
  checkMixedInvariants,
  collectKeyValues,
  describeCustomerState,
  findUnsettled,
  keyValueOfEmail,
  snapshotForeignKeys,
} from '../support/soak-invariants';
import { sqsEvent, sqsRecord } from '../support/sqs-events';

// Every line the service logs is checked for key values, so it logs all of them (see soak.test.ts).
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
});

/*
 * The mixed soak (issue 13): every operation and every scheduled job at once, over 50+ customers,
 * through a fault proxy. Some customers are registered beforehand (some three months ago, so their
 * keys are due; some revoked), the others during the run (synchronously, or queued for the worker;
 * some twice at once under two Idempotency-Keys); meanwhile on-demand rotations (grace 0 and the
 * default), tier changes (HTTP, and billing PlanChanged events through the tier-change batch
 * handler, some delivered out of order), revocations and re-activations, and the scheduled
 * rotation, retirement, reconcile and resume/sweep runs with event times in the past and in the
 * future. A few operations "die": a gate holds one of their AWS calls forever, as a Lambda that
 * died there. Then, faults off: past the lease, the sweep until it finds nothing, the retirement
 * and rotation, a final reconcile two hours on; and DESIGN §7's invariants over what the emulator
 * really holds (read directly, not through the proxy).
 *
 * KEYPLAN_SOAK_CUSTOMERS sets the size (30 by default, in npm test; `npm run soak` runs 300).
 */

const SEED = Number(process.env.KEYPLAN_SOAK_SEED ?? 13);
const CUSTOMERS = Number(process.env.KEYPLAN_SOAK_CUSTOMERS ?? 30);
/** Parallel portal sessions. moto serializes requests; this overlaps the waits, not the work. */
const CONCURRENCY = 16;
/** The config minimum: a holder that died is taken over (by the sweep) 5 s later. */
const LEASE_SECONDS = 5;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

const base = inject('localStack');
const direct: TestClients = clientsAt(base.endpoint, { region: base.region });
const prefix = `mixed${process.pid}x${Date.now().toString(36)}`;
let proxy: FaultProxy;
let config: Config;
let queueUrl: string;
let dlqUrl: string;
let handlers: Awaited<ReturnType<typeof loadHandlers>>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));


/** The scheduled functions, the queue worker and the billing events' consumer: one container each. */
async function loadHandlers() {
  return {
    worker: (await import('../../functions/provision-worker/handler')).handler,
    tierEvents: (await import('../../functions/change-tier-events/handler')).handler,
    rotateKeys: (await import('../../functions/rotate-keys/handler')).handler,
    retireKeys: (await import('../../functions/retire-keys/handler')).handler,
    reconcile: (await import('../../functions/reconcile/handler')).handler,
    resumeRegistrations: (await import('../../functions/resume-registrations/handler')).handler,
    finishOperations: (await import('../../functions/finish-operations/handler')).handler,
  };
}

/** The HTTP functions as Lambda containers of a portal session (functions/<name>/handler.ts over clients of their own). */
function httpContainer() {
  const customers = createCustomerDeps(config);
  return {
    register: httpHandler(registerRoutes(createEnqueueDeps(config))),
    customerReads: httpHandler(customerReadRoutes(createReadDeps(config))),
    changeTier: httpHandler(changeTierRoutes(customers)),
    revoke: httpHandler(revokeCustomerRoutes(customers)),
    rotateCustomer: httpHandler(rotateCustomerRoutes(createRotationDeps(config))),
  };
}
type HttpContainer = ReturnType<typeof httpContainer>;


beforeAll(async () => {
  proxy = await startFaultProxy({ target: base.endpoint, seed: SEED });
  const stack = await bootstrapLocalStack({ endpoint: base.endpoint, tableName: `keyplan-${prefix}` });
  // Created through the proxy: the queue URLs name it, so the SDK sends the queue's calls through it.
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
    SWEEP_MINUTES: '1',
    MANAGEMENT_CALLS_PER_SECOND: '1000',
    ROTATION_BATCH_SIZE: '25',
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

// ---------------------------------------------------------------------------------------------
// The customers and what happens to each

type Story =
  | 'new-sync'
  | 'new-queued'
  | 'new-twice'
  | 'rotate-and-tier'
  | 'billing-out-of-order'
  | 'revoke-race'
  | 'revoke-reactivate'
  | 'tier-http-and-billing'
  | 'reactivate-queued'
  | 'new-queued-twice-then-revoke'
  | 'scheduled-only'
  | 'crash';

const STORIES: readonly Story[] = [
  'new-sync',
  'new-queued',
  'new-twice',
  'rotate-and-tier',
  'billing-out-of-order',
  'revoke-race',
  'revoke-reactivate',
  'tier-http-and-billing',
  'reactivate-queued',
  'new-queued-twice-then-revoke',
  'scheduled-only',
  'crash',
];

/** Where a "crashed" operation dies: the call its gate holds forever. */
type CrashKind = 'tier-change' | 'rotation-before-email' | 'rotation-before-commit' | 'revocation' | 'registration-before-email';
const CRASH_KINDS: readonly CrashKind[] = [
  'tier-change',
  'rotation-before-email',
  'rotation-before-commit',
  'revocation',
  'registration-before-email',
];
const CRASH_POINTS: Record<CrashKind, { client: keyof AwsClients; command: string }> = {
  // Between taking the key out of its plan and putting it into the new one: the key is in no plan.
  'tier-change': { client: 'apiGateway', command: 'CreateUsagePlanKeyCommand' },
  // The successor is made and in its plan, nobody was told of it.
  'rotation-before-email': { client: 'ses', command: 'SendEmailCommand' },
  // The successor was emailed; neither key is recorded.
  'rotation-before-commit': { client: 'dynamo', command: 'TransactWriteItemsCommand' },
  // The customer is REVOKED, its keys still enabled.
  revocation: { client: 'apiGateway', command: 'UpdateApiKeyCommand' },
  // The key is made and in its plan, the registration PENDING, the customer not told.
  'registration-before-email': { client: 'ses', command: 'SendEmailCommand' },
};

interface CustomerPlan {
  customerId: string;
  email: string;
  tier: string;
  /** Another tier than `tier`, and a third when there is one. */
  otherTier: string;
  thirdTier: string;
  story: Story;
  /** Registered before the run: `old` three months ago (its key due for rotation), `revoked` and revoked since. */
  before: 'no' | 'old' | 'recent' | 'revoked';
  crash?: CrashKind;
}

function planCustomers(tiers: readonly string[]): CustomerPlan[] {
  const random = mulberry32(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  return Array.from({ length: CUSTOMERS }, (_, i) => {
    const story = STORIES[i % STORIES.length] as Story;
    const tier = pick(tiers);
    const otherTier = pick(tiers.filter((t) => t !== tier));
    const thirdTier = tiers.find((t) => t !== tier && t !== otherTier) ?? tier;
    const crash = story === 'crash' ? CRASH_KINDS[Math.floor(i / STORIES.length) % CRASH_KINDS.length] : undefined;
    const before: CustomerPlan['before'] = (() => {
      switch (story) {
        case 'new-sync':
        case 'new-queued':
        case 'new-twice':
        case 'new-queued-twice-then-revoke':
          return 'no';
        case 'billing-out-of-order':
        case 'revoke-reactivate':
          return 'recent';
        case 'reactivate-queued':
          return 'revoked';
        case 'crash':
          return crash === 'registration-before-email' ? 'no' : 'old';
        default:
          return 'old';
      }
    })();
    const customerId = `${prefix}-c${i}`;
    return { customerId, email: `${customerId}@example.com`, tier, otherTier, thirdTier, story, before, ...(crash ? { crash } : {}) };
  });
}

interface OperationFigures {
  requests: number;
  attempts: number;
  succeeded: number;
  /** Answered with a final refusal (4xx): a duplicate registration, a change to a revoked customer, ... */
  refused: number;
  gaveUp: number;
}

/** Each invocation gets the deployed function's timeout (serverless.yml), which middy enforces. */
const TIMEOUT_SECONDS = {
  register: 20,
  customerReads: 28,
  changeTier: 28,
  revoke: 28,
  rotateCustomer: 28,
  tierEvents: 60,
  rotateKeys: 300,
  retireKeys: 300,
  resumeRegistrations: 300,
  finishOperations: 300,
  reconcile: 900,
};
let invocations = 0;
const contextOf = (name: keyof typeof TIMEOUT_SECONDS) =>
  localLambdaContext(name, `mixed-${++invocations}`, TIMEOUT_SECONDS[name] * 1000);

/** The non-zero counts of a job's report, `interrupted.finished 1` for nested ones. */
function counts(report: unknown, path = ''): string {
  const entries = Object.entries((report ?? {}) as Record<string, unknown>).flatMap(([name, value]) => {
    if (typeof value === 'number') return value === 0 || name === 'keyCeiling' || name === 'ceilingUsedPercent' ? [] : [`${path}${name} ${value}`];
    if (value && typeof value === 'object' && !Array.isArray(value)) return [counts(value, `${path}${name}.`)].filter(Boolean);
    return [];
  });
  return entries.join(', ') || (path ? '' : 'nothing to do');
}

/** A job's report found nothing to do: every count zero (the reconciler's inventory figures aside). */
const foundNothing = (report: unknown) => counts(report) === 'nothing to do';

/** The API Gateway calls whose path names one key: reading its value, disabling, deleting it, taking it out of a plan. */
const KEY_CALLS = new Set(['GetApiKey', 'UpdateApiKey', 'DeleteApiKey', 'DeleteUsagePlanKey']);

/** A log line, shortened for a violation's report: time, message and the ids it names. */
function shortLine(line: string): string {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const fields = ['registrationId', 'customerId', 'keyId', 'newKeyId', 'operation', 'kind', 'reason', 'state', 'keyState', 'status', 'problem'];
    const error = entry.error as { name?: string; message?: string } | undefined;
    return [
      String(entry.timestamp).slice(11, 23),
      String(entry.level),
      JSON.stringify(entry.message),
      ...fields.filter((field) => entry[field] !== undefined).map((field) => `${field}=${String(entry[field])}`),
      ...(error ? [`error=${String(error.name)}: ${String(error.message)}`] : []),
    ].join(' ');
  } catch {
    return line.slice(0, 300);
  }
}

/** EventBridge's envelope time: to the second. */
const eventTime = (at: number) => new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('the mixed soak', () => {
  it(
    `keeps every invariant with every operation and every scheduled job at once over ${CUSTOMERS} customers, faults on`,
    async () => {
      const started = Date.now();
      const plans = planCustomers(Object.keys(config.tierMap));
      const figures: Record<string, OperationFigures> = {};
      const figure = (kind: string) => (figures[kind] ??= { requests: 0, attempts: 0, succeeded: 0, refused: 0, gaveUp: 0 });
      const notes: string[] = [];
      const unexpected: string[] = [];
      const violations: string[] = [];
      const pollerLines: string[] = [];
      const jobs: string[] = [];
      const crashes: string[] = [];
      const keyValues = new Map<string, string>();
      const registrationIds = new Set<string>();
      const newestEventTiers = new Map<string, string>();
      const foreignKeyCalls: string[] = [];
      const phases: string[] = [];
      let phaseStart = started;
      const phaseDone = (name: string) => {
        phases.push(`${name} ${Math.round((Date.now() - phaseStart) / 1000)} s`);
        phaseStart = Date.now();
      };

      // -------------------------------------------------------------------------------------
      // Before the run, faultless: keys of another stage and another prefix, and the customers
      // registered beforehand (through keyplan's own use cases).

      const apiGateway = direct.apiGateway;
      const hex = () => randomBytes(16).toString('hex');
      const foreignPlan = String(
        (await apiGateway.send(new CreateUsagePlanCommand({ name: `${prefix}-other-stage`, description: 'another stage' }))).id,
      );
      const seedKey = async (what: string, name: string, tags: Record<string, string>, planIds: string[]) => {
        const id = String((await apiGateway.send(new CreateApiKeyCommand({ name, enabled: true, tags }))).id);
        for (const usagePlanId of planIds) await apiGateway.send(new CreateUsagePlanKeyCommand({ usagePlanId, keyId: id, keyType: 'API_KEY' }));
        return { what, id };
      };
      const byStory = (story: Story, crash?: CrashKind) => plans.filter((p) => p.story === story && (!crash || p.crash === crash));
      const someone = (story: Story, crash?: CrashKind) => byStory(story, crash)[0] ?? (plans[0] as CustomerPlan);
      const ourPlan = String(Object.values(config.tierMap)[0]);
      const otherStage = (customer: CustomerPlan, registrationId: string) => ({
        'keyplan:managed': 'true',
        'keyplan:stage': 'other',
        'keyplan:customer': customer.customerId,
        'keyplan:registration': registrationId,
      });
      const seeded = [
        // Another stage sharing the account and the prefix sees the same ids from its portal: keys
        // named exactly as ours (a pre-registered customer's first key, the successor a rotation
        // that dies before its email would make, the key of a registration that dies), in a plan of its own.
        await seedKey(
          'other stage, same name as a first key',
          keyNameFor(prefix, `${someone('rotate-and-tier').customerId}-r0`),
          otherStage(someone('rotate-and-tier'), `${someone('rotate-and-tier').customerId}-r0`),
          [foreignPlan],
        ),
        await seedKey(
          'other stage, same name as a successor',
          `${keyNameFor(prefix, `${someone('crash', 'rotation-before-email').customerId}-r0`)}-g2`,
          otherStage(someone('crash', 'rotation-before-email'), `${someone('crash', 'rotation-before-email').customerId}-r0`),
          [foreignPlan],
        ),
        await seedKey(
          'other stage, same name as a registration that dies',
          keyNameFor(prefix, `${someone('crash', 'registration-before-email').customerId}-r1`),
          otherStage(someone('crash', 'registration-before-email'), `${someone('crash', 'registration-before-email').customerId}-r1`),
          [foreignPlan],
        ),
        // Another stage's key in one of our plans (a shared plan), named under our scheme.
        await seedKey('other stage, in our plan', keyNameFor(prefix, `${prefix}-elsewhere`), otherStage(someone('scheduled-only'), `${prefix}-elsewhere`), [ourPlan]),
        // A prefix that extends ours: another stage's, and an untagged (legacy) one only its name tells apart.
        await seedKey('prefix extending ours, other stage', `${prefix}-alice-${hex()}`, otherStage(someone('scheduled-only'), 'alice'), []),
        await seedKey('prefix extending ours, no stage tag', `${prefix}-alice-${hex()}`, { 'keyplan:managed': 'true', 'keyplan:customer': someone('scheduled-only').customerId }, [ourPlan]),
      ];

      const request = (plan: CustomerPlan, extra: Record<string, unknown> = {}) => ({
        customerId: plan.customerId,
        email: plan.email,
        tier: plan.tier,
        ...extra,
      });
      const setupDeps = { provisioning: createProvisioningDeps(config), customers: createCustomerDeps(config) };
      const earlier = plans.filter((plan) => plan.before !== 'no');
      let nextSetup = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (nextSetup < earlier.length) {
            const plan = earlier[nextSetup++] as CustomerPlan;
            const registrationId = `${plan.customerId}-r0`;
            registrationIds.add(registrationId);
            const at = plan.before === 'recent' ? Date.now() - DAY_MS : Date.now() - 95 * DAY_MS;
            await provisionKey({ registrationId, request: request(plan), now: new Date(at) }, setupDeps.provisioning);
            if (plan.before === 'revoked') await revokeCustomer({ customerId: plan.customerId, now: new Date(at + DAY_MS) }, setupDeps.customers);
          }
        }),
      );
      const foreignKeys = await snapshotForeignKeys(direct, seeded);
      const foreignIds = new Set(foreignKeys.map((key) => key.id));
      await collectKeyValues(direct, prefix, keyValues);
      phaseDone('setup');

      // Not a fault: a record of every call whose path names a foreign key (none may), and of every
      // API Gateway call that names a key (for the report of a violation).
      const keyCalls: { at: number; call: string }[] = [];
      const watchForeignKeys: FaultRule = {
        name: 'foreign key watch',
        operation: (call) => {
          if (call.path.split('/').some((segment) => foreignIds.has(segment))) foreignKeyCalls.push(`${call.service} ${call.operation} ${call.path}`);
          if (call.service === 'apigateway' && KEY_CALLS.has(call.operation)) keyCalls.push({ at: Date.now(), call: `${call.operation} ${call.path}` });
          return false;
        },
        fault: { kind: 'delay', ms: 0 },
      };
      proxy.setRules([watchForeignKeys]);

      // -------------------------------------------------------------------------------------
      // The operations

      /** One portal request, repeated as a portal would; what it took goes into the figures. */
      const portal = async (
        kind: string,
        subject: string,
        send: () => Promise<APIGatewayProxyResult>,
        repeatIf?: (response: APIGatewayProxyResult) => boolean,
      ) => {
        const f = figure(kind);
        const result = await sendAsPortal(send, { maxAttempts: 12, maxWaitMs: (LEASE_SECONDS + 1) * 1000, repeatIf });
        f.requests++;
        f.attempts += result.attempts;
        const { statusCode } = result.response;
        if (statusCode < 300) f.succeeded++;
        else if (statusCode < 500 && !result.gaveUp) f.refused++;
        if (problemCode(result.response) === 'internal-error') unexpected.push(`${kind} of ${subject}: ${statusCode} internal-error`);
        if (result.gaveUp) {
          f.gaveUp++;
          notes.push(`${kind} of ${subject}: gave up after ${result.attempts} attempts (${statusCode} ${problemCode(result.response) ?? ''})`);
        }
        return result;
      };
      const body = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;
      const emailPending = (response: APIGatewayProxyResult) => body(response).status === 'EMAIL_PENDING';

      const registerSync = async (plan: CustomerPlan, registrationId: string, http: HttpContainer, extra: Record<string, unknown> = {}) => {
        registrationIds.add(registrationId);
        const { response } = await portal(
          'register (sync)',
          plan.customerId,
          () => http.register(postRegistration(request(plan, extra), { 'Idempotency-Key': registrationId }), contextOf('register')),
          emailPending,
        );
        return response;
      };

      const registerQueued = async (plan: CustomerPlan, registrationId: string, http: HttpContainer, extra: Record<string, unknown> = {}) => {
        registrationIds.add(registrationId);
        const queued = await portal('register (queued)', plan.customerId, () =>
          http.register(
            postRegistration(request(plan, extra), { 'Idempotency-Key': registrationId, Prefer: 'respond-async' }),
            contextOf('register'),
          ),
        );
        if (queued.response.statusCode >= 300) return queued.response;
        // The portal follows the status URL until the registration is done.
        const deadline = Date.now() + 90_000;
        while (Date.now() < deadline) {
          const status = await portal('status read', plan.customerId, () =>
            http.customerReads(
              apiEvent({ method: 'GET', resource: '/registrations/{id}', pathParameters: { id: registrationId } }),
              contextOf('customerReads'),
            ),
          );
          const state = status.response.statusCode === 200 ? body(status.response).status : undefined;
          if (state === 'ACTIVE' || state === 'EMAIL_PENDING' || state === 'FAILED' || state === 'REVOKED') return status.response;
          await sleep(500);
        }
        notes.push(`register (queued) ${registrationId}: not finished within 90 s`);
        return queued.response;
      };

      const putTier = (plan: CustomerPlan, tier: string, http: HttpContainer) =>
        portal('tier change (HTTP)', plan.customerId, () =>
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

      const rotate = (plan: CustomerPlan, graceDays: number | undefined, http: HttpContainer) =>
        portal(`rotation (grace ${graceDays ?? 'default'})`, plan.customerId, () =>
          http.rotateCustomer(
            apiEvent({
              method: 'POST',
              resource: '/customers/{customerId}/rotations',
              pathParameters: { customerId: plan.customerId },
              body: graceDays === undefined ? null : JSON.stringify({ graceDays }),
            }),
            contextOf('rotateCustomer'),
          ),
        );

      const revoke = (plan: CustomerPlan, http: HttpContainer) =>
        portal('revocation', plan.customerId, () =>
          http.revoke(
            apiEvent({ method: 'DELETE', resource: '/customers/{customerId}/keys', pathParameters: { customerId: plan.customerId } }),
            contextOf('revoke'),
          ),
        );

      let billingEvents = 0;
      /** A PlanChanged event through EventBridge and the tier-change queue: redelivered until acknowledged, as SQS would. */
      const planChanged = (plan: CustomerPlan, tier: string, at: number, fine = false): SQSRecord =>
        sqsRecord({
          id: `${plan.customerId}-evt${++billingEvents}`,
          'detail-type': 'PlanChanged',
          source: 'billing',
          time: eventTime(at),
          detail: { customerId: plan.customerId, tier, ...(fine ? { occurredAt: new Date(at).toISOString() } : {}) },
        });
      const deliver = async (plan: CustomerPlan, record: SQSRecord): Promise<boolean> => {
        const f = figure('billing event');
        f.requests++;
        for (let delivery = 1; delivery <= 12; delivery++) {
          f.attempts++;
          let acknowledged = false;
          try {
            const response = (await handlers.tierEvents(sqsEvent([record]), contextOf('tierEvents'))) as SQSBatchResponse;
            acknowledged = response.batchItemFailures.length === 0;
          } catch (error) {
            notes.push(`billing event for ${plan.customerId}: the invocation failed (${(error as Error).name})`);
          }
          if (acknowledged) {
            f.succeeded++;
            return true;
          }
          // Back on the queue after its visibility timeout.
          await sleep(2_000 + Math.random() * 2_000);
        }
        f.gaveUp++;
        notes.push(`billing event for ${plan.customerId}: not acknowledged after 12 deliveries`);
        return false;
      };

      /**
       * An operation that dies at a chosen AWS call: a gate on its own clients holds the call
       * forever. Tried again (fresh clients, as a new request would) while it fails before getting
       * there, e.g. because another operation holds the customer.
       */
      const crash = async (plan: CustomerPlan, kind: CrashKind): Promise<boolean> => {
        const f = figure(`crash: ${kind}`);
        f.requests++;
        for (let attempt = 1; attempt <= 8; attempt++) {
          f.attempts++;
          const clients = createAwsClients();
          const point = CRASH_POINTS[kind];
          const held = gate(clients[point.client], point.command);
          const now = new Date();
          const run: Promise<unknown> = (() => {
            switch (kind) {
              case 'tier-change':
                return changeTier(
                  { customerId: plan.customerId, tier: plan.otherTier, requestId: `crash-${plan.customerId}-${attempt}`, now },
                  createCustomerDeps(config, clients),
                );
              case 'rotation-before-email':
                return rotateCustomerKeys(plan.customerId, { now, graceDays: 0 }, createRotationDeps(config, clients));
              case 'rotation-before-commit':
                return rotateCustomerKeys(plan.customerId, { now, graceDays: undefined }, createRotationDeps(config, clients));
              case 'revocation':
                return revokeCustomer({ customerId: plan.customerId, now }, createCustomerDeps(config, clients));
              case 'registration-before-email': {
                registrationIds.add(`${plan.customerId}-r1`);
                return provisionKey(
                  { registrationId: `${plan.customerId}-r1`, request: request(plan), now },
                  createProvisioningDeps(config, clients),
                );
              }
            }
          })();
          const outcome = await Promise.race([
            held.reached.then(() => 'frozen'),
            run.then(
              () => 'finished before its gate',
              (error: unknown) => `failed before its gate (${(error as Error).name})`,
            ),
            sleep(30_000).then(() => 'still running after 30 s'),
          ]);
          if (outcome === 'frozen') {
            f.succeeded++;
            crashes.push(`${kind} of ${plan.customerId}: died at ${point.command} (attempt ${attempt})`);
            return true;
          }
          if (outcome === 'finished before its gate') {
            crashes.push(`${kind} of ${plan.customerId}: finished before its gate (attempt ${attempt})`);
            return false;
          }
          await sleep(1_000 + Math.random() * 1_000);
        }
        f.gaveUp++;
        crashes.push(`${kind} of ${plan.customerId}: never reached its gate`);
        return false;
      };

      async function story(plan: CustomerPlan, http: HttpContainer, side: HttpContainer) {
        const id = plan.customerId;
        const ok = (response: APIGatewayProxyResult) => response.statusCode < 300;
        switch (plan.story) {
          case 'new-sync':
            if (ok(await registerSync(plan, `${id}-r1`, http))) await rotate(plan, 0, http);
            return;
          case 'new-queued':
            if (ok(await registerQueued(plan, `${id}-r1`, http))) await putTier(plan, plan.otherTier, http);
            return;
          case 'new-twice': {
            // A double submit under two Idempotency-Keys: one registration, the other refused.
            const answers = await Promise.all([registerSync(plan, `${id}-r1`, http), registerSync(plan, `${id}-r2`, side)]);
            const keys = new Set(answers.filter(ok).map((response) => body(response).keyId));
            if (keys.size > 1) violations.push(`customer ${id}: two registrations under two Idempotency-Keys both made a key (${[...keys].join(', ')})`);
            if (answers.some(ok)) await rotate(plan, undefined, http);
            return;
          }
          case 'rotate-and-tier':
            await Promise.all([rotate(plan, undefined, http), putTier(plan, plan.otherTier, side)]);
            return;
          case 'billing-out-of-order': {
            // Three events, delivered out of order (the newest first, or the oldest last), two of them at once.
            const t = Date.now();
            const events = [
              { tier: plan.otherTier, at: t - 30 * MINUTE_MS },
              { tier: plan.thirdTier, at: t - 20 * MINUTE_MS },
              { tier: plan.otherTier === plan.tier ? plan.thirdTier : plan.tier, at: t - 10 * MINUTE_MS },
            ];
            const orders = [
              [2, 0, 1],
              [1, 2, 0],
              [2, 1, 0],
              [0, 2, 1],
            ];
            const order = orders[Math.floor(Math.random() * orders.length)] as number[];
            const records = order.map((i) => ({ ...(events[i] as { tier: string; at: number }), record: planChanged(plan, events[i]!.tier, events[i]!.at, i === 1) }));
            const first = await deliver(plan, records[0]!.record);
            await sleep(Math.random() * 1_000);
            const rest = await Promise.all(records.slice(1).map((r) => deliver(plan, r.record)));
            if (first && rest.every(Boolean)) newestEventTiers.set(id, events[2]!.tier);
            else notes.push(`customer ${id}: a billing event was never acknowledged; its tier is not checked`);
            return;
          }
          case 'revoke-race':
            await Promise.all([revoke(plan, http), rotate(plan, 0, side), putTier(plan, plan.otherTier, httpContainer())]);
            return;
          case 'revoke-reactivate':
            await revoke(plan, http);
            if (ok(await registerSync(plan, `${id}-r2`, http, { reactivate: true, tier: plan.otherTier }))) {
              await Promise.all([rotate(plan, undefined, http), deliver(plan, planChanged(plan, plan.thirdTier, Date.now(), true))]);
            }
            return;
          case 'tier-http-and-billing': {
            // A portal change and a billing event at once; then an older event, delivered late.
            await Promise.all([putTier(plan, plan.otherTier, http), deliver(plan, planChanged(plan, plan.thirdTier, Date.now() - 5 * MINUTE_MS))]);
            await deliver(plan, planChanged(plan, plan.tier, Date.now() - 50 * MINUTE_MS));
            return;
          }
          case 'reactivate-queued':
            if (ok(await registerQueued(plan, `${id}-r2`, http, { reactivate: true }))) await rotate(plan, 0, http);
            return;
          case 'new-queued-twice-then-revoke': {
            const answers = await Promise.all([registerQueued(plan, `${id}-r1`, http), registerQueued(plan, `${id}-r2`, side)]);
            const states = answers.filter(ok).map((response) => body(response));
            const keys = new Set(states.filter((s) => s.keyId).map((s) => s.keyId));
            if (keys.size > 1) violations.push(`customer ${id}: two queued registrations under two Idempotency-Keys both made a key (${[...keys].join(', ')})`);
            if (answers.some(ok)) await revoke(plan, http);
            return;
          }
          case 'scheduled-only':
            return;
          case 'crash': {
            const kind = plan.crash as CrashKind;
            const died = await crash(plan, kind);
            if (!died) return;
            // The customer meanwhile: busy until the sweep has finished what the dead operation left.
            if (kind === 'tier-change') await putTier(plan, plan.thirdTier, http);
            else if (kind === 'rotation-before-email' || kind === 'rotation-before-commit') await rotate(plan, undefined, http);
            else if (kind === 'revocation') await registerSync(plan, `${id}-r2`, http, { reactivate: true });
            return;
          }
        }
      }

      /** A scheduled function; an invocation that throws is retried twice, as Lambda does for EventBridge. */
      async function scheduled<T>(name: string, at: number, invoke: (event: ScheduledEvent) => Promise<T>): Promise<T | undefined> {
        const event = {
          version: '0',
          id: `${name}-${at}`,
          'detail-type': 'Scheduled Event',
          source: 'aws.events',
          account: '123456789012',
          time: eventTime(at),
          region: base.region,
          resources: [],
          detail: {},
        } as ScheduledEvent;
        const offset = at - Date.now();
        const when = Math.abs(offset) < MINUTE_MS ? 'now' : `${offset > 0 ? '+' : '-'}${Math.abs(offset) >= DAY_MS ? `${Math.round(Math.abs(offset) / DAY_MS)}d` : `${Math.round(Math.abs(offset) / HOUR_MS)}h`}`;
        for (let invocation = 1; invocation <= 3; invocation++) {
          const start = Date.now();
          try {
            const report = await invoke(event);
            jobs.push(`${name} at ${when} (${Math.round((Date.now() - start) / 100) / 10} s): ${counts(report)}`);
            return report;
          } catch (error) {
            jobs.push(`${name} at ${when}: invocation ${invocation} failed: ${(error as Error).name}: ${(error as Error).message}`);
          }
        }
        notes.push(`${name} at ${event.time}: every invocation failed`);
        return undefined;
      }
      const jobs_ = {
        rotateKeys: (event: ScheduledEvent) => handlers.rotateKeys(event, contextOf('rotateKeys')),
        retireKeys: (event: ScheduledEvent) => handlers.retireKeys(event, contextOf('retireKeys')),
        reconcile: (event: ScheduledEvent) => handlers.reconcile({ time: event.time }, contextOf('reconcile')),
        // The sweep's two functions, fired together by their one schedule; one report of both.
        resume: async (event: ScheduledEvent) => {
          const [registrations, interrupted] = await Promise.all([
            handlers.resumeRegistrations(event, contextOf('resumeRegistrations')),
            handlers.finishOperations(event, contextOf('finishOperations')),
          ]);
          return { registrations, interrupted };
        },
      };

      // -------------------------------------------------------------------------------------
      // The run: everything at once, faults on

      let reconcileRuns = 0;
      let quiesceRounds = 0;
      let leftUnsettled: string[] = [];
      const retireTimes: number[] = [];
      const lines = await captureOutput(async () => {
        const t0 = Date.now();
        proxy.setRules([watchForeignKeys, ...faultRules(t0)]);
        let trafficDone = false;
        const collector = (async () => {
          while (!trafficDone) {
            await collectKeyValues(direct, prefix, keyValues).catch(() => undefined);
            await sleep(2_000);
          }
        })();
        const poller = startQueuePoller({
          sqs: createAwsClients().sqs,
          queueUrl,
          handler: handlers.worker,
          concurrency: 2,
          retryDelaySeconds: LEASE_SECONDS + 1,
          region: base.region,
          log: (line) => pollerLines.push(line),
        });
        /** Each scheduled function as its schedule would run it meanwhile: its event times first, then again, until the traffic is done. */
        const chain = async (name: string, times: readonly (() => number)[], gapMs: number, invoke: (event: ScheduledEvent) => Promise<unknown>) => {
          for (let i = 0; !trafficDone || i < times.length; i++) {
            const at = (times[i % times.length] as () => number)();
            if (name === 'retire-keys') retireTimes.push(at);
            await scheduled(name, at, invoke);
            await sleep(gapMs);
          }
        };
        const chains = Promise.all([
          // A late event (an hour, two hours), the next quarter's, a repeated delivery.
          chain('rotate-keys', [() => t0 - HOUR_MS, () => t0 + 91 * DAY_MS, () => t0 + DAY_MS, () => t0 + 91 * DAY_MS, () => t0 - 2 * HOUR_MS], 1_500, jobs_.rotateKeys),
          // Past the grace of the keys rotated now (8 days) and of those rotated a quarter ahead (99
          // days), past their retention (40, 140 days), and a late event.
          chain('retire-keys', [() => t0 + 8 * DAY_MS, () => t0 - HOUR_MS, () => t0 + 40 * DAY_MS, () => t0 + 99 * DAY_MS, () => t0 + 140 * DAY_MS], 1_500, jobs_.retireKeys),
          // Every key old enough to be judged (two, three hours on), and a late event.
          chain('reconcile', [() => t0 - HOUR_MS, () => t0 + 2 * HOUR_MS, () => t0 + 3 * HOUR_MS], 3_000, async (event) => {
            reconcileRuns++;
            return jobs_.reconcile(event);
          }),
          // The sweep, every couple of seconds at the clock, once hours ahead and once late.
          chain('resume-registrations', [() => Date.now(), () => Date.now(), () => Date.now() + HOUR_MS, () => Date.now(), () => Date.now() - HOUR_MS], 1_500, jobs_.resume),
        ]);
        try {
          let next = 0;
          await Promise.all(
            Array.from({ length: CONCURRENCY }, async () => {
              const http = httpContainer();
              const side = httpContainer();
              while (next < plans.length) await story(plans[next++] as CustomerPlan, http, side);
            }),
          );
          phaseDone('traffic');
          const drained = Date.now() + 30_000;
          while ((await queueDepth(direct.sqs, queueUrl)) > 0 && Date.now() < drained) await sleep(500);
        } finally {
          trafficDone = true;
          await chains;
          await poller.stop();
          await collector;
        }
        phaseDone('jobs and queue drained');

        // Quiesce, faults off: past every lease, the sweep until it finds nothing (the resume backs
        // off per registration, doubling, so its runs spread over days), the retirement at the clock
        // and at every later time a run had, the rotation at the clock; again while anything is
        // unsettled. Then the final reconcile two hours on.
        proxy.setRules([watchForeignKeys]);
        await sleep((LEASE_SECONDS + 1) * 1000);
        const subject = { tableName: config.tableName, customers: new Map(plans.map((p) => [p.customerId, p])), registrationIds: [...registrationIds] };
        for (quiesceRounds = 1; quiesceRounds <= 4; quiesceRounds++) {
          for (const hours of [0, 1, 2, 4, 8, 16, 32, 64, 128]) {
            const report = await scheduled('resume-registrations', Date.now() + hours * HOUR_MS, jobs_.resume);
            if (report && foundNothing(report) && hours > 0 && (await findUnsettled(direct, subject)).length === 0) break;
          }
          for (const at of [Date.now(), ...[...new Set(retireTimes)].filter((time) => time > Date.now()).sort((a, b) => a - b)]) {
            await scheduled('retire-keys', at, jobs_.retireKeys);
          }
          await scheduled('rotate-keys', Date.now(), jobs_.rotateKeys);
          leftUnsettled = await findUnsettled(direct, subject);
          if (leftUnsettled.length === 0) break;
        }
        for (let run = 1; run <= 3; run++) {
          reconcileRuns++;
          const report = await scheduled('reconcile', Date.now() + 2 * HOUR_MS, jobs_.reconcile);
          if (report && report.failures === 0 && report.busy === 0) break;
        }
        phaseDone('quiesce');
      });
      proxy.setRules([]);
      const proxyStats = proxy.stats();
      if (process.env.SOAK_LOG_FILE) await writeFile(process.env.SOAK_LOG_FILE, [...lines, ...jobs, ...pollerLines].join('\n'));

      // -------------------------------------------------------------------------------------
      // The invariants, on the emulator's real state

      await collectKeyValues(direct, prefix, keyValues);
      const addresses = new Map(plans.map((plan) => [plan.email, plan.customerId]));
      const sentEmails = (await allSentEmails(base.endpoint)).filter((email) =>
        (email.destinations.ToAddresses ?? []).some((to) => addresses.has(to)),
      );
      for (const email of sentEmails) {
        const value = keyValueOfEmail(email);
        if (value && !keyValues.has(value)) keyValues.set(value, `a key emailed to ${String(addresses.get(email.destinations.ToAddresses?.[0] ?? ''))}`);
      }
      const invariants = await checkMixedInvariants(
        direct,
        {
          tableName: config.tableName,
          keyNamePrefix: prefix,
          stage: config.stage,
          tierMap: config.tierMap,
          customers: new Map(plans.map((plan) => [plan.customerId, { email: plan.email }])),
          registrationIds: [...registrationIds],
          foreignKeys,
          newestEventTiers,
        },
        { logLines: lines, keyValues, sentEmails, foreignKeyCalls },
      );
      const dlqDepth = await queueDepth(direct.sqs, dlqUrl);
      phaseDone('invariant checks');
      violations.push(...invariants.violations, ...invariants.unsettled.map((line) => `not settled after the sweep: ${line}`));

      // For each customer a violation names: what the emulator holds, the calls that changed its
      // keys and the log lines that name it or its keys.
      const evidence: string[] = [];
      const named = [
        ...new Set([
          ...violations.flatMap((line) => line.match(new RegExp(`${prefix}-c\\d+`, 'g')) ?? []),
          // The customer a foreign key was made to look like (its tag): the one whose operations took it.
          ...foreignKeys.filter((key) => violations.some((line) => line.includes(key.id))).map((key) => String(key.tags['keyplan:customer'])),
        ]),
      ];
      for (const customerId of named.slice(0, 8)) {
        const state = await describeCustomerState(direct, { tableName: config.tableName, keyNamePrefix: prefix, tierMap: config.tierMap }, customerId);
        const story = plans.find((plan) => plan.customerId === customerId);
        const mentions = (text: string) =>
          text.includes(`"${customerId}"`) || text.includes(`"${customerId}-r`) || state.keyIds.some((keyId) => text.includes(keyId));
        evidence.push(
          `${customerId} (${String(story?.story)}${story?.crash ? `: ${story.crash}` : ''}, registered before: ${String(story?.before)}, tier ${String(story?.tier)}):`,
          ...state.lines.map((line) => `    ${line}`),
          ...keyCalls
            .filter(({ call }) => state.keyIds.some((keyId) => call.includes(keyId)))
            .map(({ at, call }) => `    call ${new Date(at).toISOString().slice(11, 23)} ${call}`),
          ...lines.filter(mentions).map((line) => `    log ${shortLine(line)}`),
        );
      }

      const operationKinds = Object.keys(figures).filter((kind) => kind !== 'status read');
      const operationsRun = operationKinds.reduce((sum, kind) => sum + (figures[kind]?.requests ?? 0), 0);
      const frozen = crashes.filter((line) => line.includes('died at')).length;
      const faultTotal = FAULT_KINDS.reduce((sum, kind) => sum + proxyStats.faults[kind], 0);
      const emulatorCalls = Object.values(proxyStats.calls).reduce((sum, n) => sum + n, 0);
      const seconds = Math.round((Date.now() - started) / 1000);
      const row = (cells: (string | number)[]) => cells.map((c, i) => (i === 0 ? String(c).padEnd(34) : String(c).padStart(9))).join('');
      console.log(
        [
          `keyplan mixed soak: ${CUSTOMERS} customers, seed ${SEED}, ${seconds} s; operations ${operationsRun} ` +
            `(${operationKinds.map((kind) => `${kind} ${figures[kind]?.requests ?? 0}`).join(', ')}) + ${jobs.length} scheduled invocations; ` +
            `crashes ${frozen}; faults ${faultTotal} (${FAULT_KINDS.map((kind) => `${kind} ${proxyStats.faults[kind]}`).join(', ')}); ` +
            `invariant violations ${violations.length}`,
          row(['operation', 'requests', 'attempts', 'ok', 'refused', 'gave up']),
          ...Object.entries(figures).map(([kind, f]) => row([kind, f.requests, f.attempts, f.succeeded, f.refused, f.gaveUp])),
          `emulator calls through the proxy ${emulatorCalls}; SDK retries ${proxyStats.sdkRetries}; transactions replayed by token ${proxyStats.replayedTransactions}; ` +
            `unplanned upstream errors ${proxyStats.upstreamErrors}; DLQ ${dlqDepth}; quiesce rounds ${quiesceRounds}; reconciler runs ${reconcileRuns}`,
          'crashes:',
          ...crashes.map((line) => `  ${line}`),
          'jobs:',
          ...jobs.map((line) => `  ${line}`),
          `checked: ${Object.entries(invariants.checked).map(([what, n]) => `${n} ${what}`).join(', ')}`,
          `phases: ${phases.join(', ')}`,
          `notes (liveness, not invariants): ${notes.length}`,
          ...notes.map((line) => `  - ${line}`),
          `unexpected errors: ${unexpected.length}`,
          ...unexpected.map((line) => `  - ${line}`),
          `left unsettled by the last quiesce round: ${leftUnsettled.length}`,
          `invariant violations: ${violations.length}`,
          ...violations.map((line) => `  - ${line}`),
          ...(evidence.length > 0 ? ['evidence:', ...evidence.map((line) => `  ${line}`)] : []),
        ].join('\n'),
      );

      expect(CUSTOMERS).toBeGreaterThanOrEqual(12);
      expect(operationsRun).toBeGreaterThanOrEqual(CUSTOMERS);
      expect(frozen).toBeGreaterThan(0);
      expect(lines.some((line) => line.includes('"message":"finishing an interrupted operation"'))).toBe(true);
      for (const kind of FAULT_KINDS) expect(proxyStats.faults[kind]).toBeGreaterThan(0);
      expect(proxyStats.upstreamErrors).toBe(0);
      expect(unexpected).toEqual([]);
      expect(violations).toEqual([]);
    },
    240_000 + CUSTOMERS * 3_000,
  );
});
