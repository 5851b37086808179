import { randomBytes } from 'node:crypto';
import { CreateApiKeyCommand, CreateUsagePlanKeyCommand, GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyResult, SQSBatchResponse } from 'aws-lambda';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients';
import { regKey } from '../../shared/aws/table-keys';
import { type Config, loadConfig } from '../../shared/config';
import { changeTier } from '../../shared/customers/change-tier';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import { TransientAwsError } from '../../shared/errors';
import { httpHandler } from '../../shared/http/handler';
import {
  createCustomerDeps,
  createEnqueueDeps,
  createProvisioningDeps,
  createReconcileDeps,
  createResumeDeps,
  createRotationDeps,
} from '../../shared/wiring/compose';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { keyNameFor } from '../../shared/core/registration';
import { resumeStalledRegistrations } from '../../shared/provisioning/resume-registrations';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';
import { rotateKey } from '../../shared/rotation/rotate-key';
import { rotateDueKeys } from '../../shared/rotation/rotation-jobs';
import { finishInterruptedOperations } from '../../shared/sweep/finish-interrupted';
import { changeTierRoutes } from '../../functions/change-tier/routes';
import { tierChangeBatchHandler } from '../../functions/change-tier-events/batch';
import { registerRoutes } from '../../functions/register/routes';
import { revokeCustomerRoutes } from '../../functions/revoke-customer/routes';
import { apiEvent, lambdaContext, postRegistration } from '../support/api-events';
import { clientsAt } from '../support/aws-test-clients';
import { failAttempts, itemsOfCustomer, keysNamed, plansOfKey, sentEmailsTo } from '../support/emulator-probe';
import { awsError, gate, heldAt } from '../support/gates';
import { allSentEmails, keysOfPrefix } from '../support/soak-invariants';
import { sqsEvent, sqsRecord } from '../support/sqs-events';

// Issue 13: every operation on one customer, run together, interleaved deterministically. The
// rotation, reconcile and sweep jobs work over a whole table and a whole key prefix, so each test
// has both to itself.
let stack: LocalStack;
let config: Config;
let runId = 0;
const unique = (label: string) => `${label}${process.pid}x${Date.now().toString(36)}x${++runId}`;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const fromNow = (ms: number) => new Date(Date.now() + ms);

beforeEach(async () => {
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-together-') });
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig({
    ...functionEnvironment(stack),
    KEY_NAME_PREFIX: unique('tog'),
    MANAGEMENT_CALLS_PER_SECOND: '1000',
    RESUME_AFTER_MINUTES: '15',
  });
});

const plan = (tier: 'free' | 'basic' | 'pro') => String(stack.usagePlans[tier]);
const parse = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;

/** Registers a new customer (its registration id is the customer id) as of `now`. */
async function registerCustomer(tier: string, now = new Date()) {
  const customerId = unique('cust');
  const email = `${customerId}@example.com`;
  const { registration } = await provisionKey(
    { registrationId: customerId, request: { customerId, email, tier }, now },
    createProvisioningDeps(config),
  );
  return { customerId, email, keyId: String(registration.keyId) };
}

const postRegistrationHttp = (body: Record<string, unknown>, idempotencyKey: string, clients?: AwsClients) =>
  httpHandler(registerRoutes(createEnqueueDeps(config, clients)))(
    postRegistration(body, { 'Idempotency-Key': idempotencyKey }),
    lambdaContext(),
  );

const putTier = (customerId: string, tier: string, clients?: AwsClients) =>
  httpHandler(changeTierRoutes(createCustomerDeps(config, clients)))(
    apiEvent({ method: 'PUT', resource: '/customers/{customerId}/tier', pathParameters: { customerId }, body: JSON.stringify({ tier }) }),
    lambdaContext(),
  );

const revokeHttp = (customerId: string) =>
  httpHandler(revokeCustomerRoutes(createCustomerDeps(config)))(
    apiEvent({ method: 'DELETE', resource: '/customers/{customerId}/keys', pathParameters: { customerId } }),
    lambdaContext(),
  );

/**
 * The sweep's second half as its schedule runs it, with the clock past every lease taken so far:
 * an operation that died or gave up holding a must-finish lease is finished now.
 */
const sweepAfterLeases = () => {
  const pastLeases = () => fromNow((config.leaseSeconds + 5) * 1000);
  return finishInterruptedOperations(new Date(), 50, { ...createResumeDeps(config), clock: pastLeases });
};

const apiKey = (keyId: string) =>
  createAwsClients()
    .apiGateway.send(new GetApiKeyCommand({ apiKey: keyId, includeValue: true }))
    .catch((error: { name?: string }) => (error.name === 'NotFoundException' ? undefined : Promise.reject(error)));
const plansOf = (keyId: string) => plansOfKey(createAwsClients().apiGateway, keyId);
const named = (name: string) => keysNamed(createAwsClients().apiGateway, name);
const successorName = (registrationId: string, generation = 2) => `${keyNameFor(config.keyNamePrefix, registrationId)}-g${generation}`;
const emailsTo = (address: string) => sentEmailsTo(stack.endpoint, address);

const profile = async (customerId: string) =>
  (
    await createAwsClients().dynamo.send(
      new GetCommand({ TableName: config.tableName, Key: { pk: `CUSTOMER#${customerId}`, sk: 'PROFILE' }, ConsistentRead: true }),
    )
  ).Item;
const registrationItem = async (registrationId: string) =>
  (await createAwsClients().dynamo.send(new GetCommand({ TableName: config.tableName, Key: regKey(registrationId), ConsistentRead: true })))
    .Item;
const keyItems = async (customerId: string) =>
  (await itemsOfCustomer(createAwsClients().dynamo, config.tableName, customerId)).filter((item) => String(item.sk).startsWith('KEY#'));
const keyItem = async (customerId: string, keyId: string) => (await keyItems(customerId)).find((item) => item.keyId === keyId);

describe('safe together', () => {
  describe('the reconciler never deletes a key in use', () => {
    it('keeps the successor a rotation emailed but failed to record, and the sweep records it', async () => {
      const customer = await registerCustomer('basic');
      const [old] = await createRotationDeps(config).keyStore.keysOf(customer.customerId);
      const clients = createAwsClients();
      // Created, associated, emailed: then the write that records both keys fails.
      const commit = failAttempts(clients.dynamo, 'TransactWriteItemsCommand', awsError('InternalServerError', 500));

      await expect(
        rotateKey(old!, { now: new Date(), graceDays: 7 }, createRotationDeps(config, clients)),
      ).rejects.toBeInstanceOf(TransientAwsError);

      expect(commit.failed).toBeGreaterThan(0);
      const [successor] = await named(successorName(customer.customerId));
      expect(successor?.enabled).toBe(true);
      const emails = await emailsTo(customer.email);
      expect(emails).toHaveLength(2);
      expect(emails[1]?.body).toContain(String(successor?.value));
      const successorId = String(successor?.id);

      // Two hours later the successor looks like an orphan: in API Gateway, recorded nowhere.
      const report = await reconcileKeys({ now: fromNow(2 * HOUR), dryRun: false }, createReconcileDeps(config));

      expect(report.actions).toContainEqual(expect.objectContaining({ kind: 'delete-orphan', keyId: successorId }));
      expect(report.done['delete-orphan']).toBe(0);
      expect(report.busy).toBe(1);
      expect((await apiKey(successorId))?.enabled).toBe(true);

      expect(await sweepAfterLeases()).toMatchObject({ finished: 1, failed: 0 });

      expect(await keyItem(customer.customerId, successorId)).toMatchObject({ state: 'ACTIVE' });
      expect(await keyItem(customer.customerId, customer.keyId)).toMatchObject({ state: 'RETIRING', successorKeyId: successorId });
      expect(await profile(customer.customerId)).toMatchObject({ status: 'ACTIVE', emailedKeyId: successorId });
      expect((await apiKey(successorId))?.enabled).toBe(true);
      expect((await apiKey(customer.keyId))?.enabled).toBe(true);
      expect(await named(successorName(customer.customerId))).toHaveLength(1);
      expect(await plansOf(successorId)).toEqual([plan('basic')]);
      expect((await emailsTo(customer.email)).at(-1)?.body).toContain(String(successor?.value));
    });

    it('keeps a registration key it listed unrecorded when the registration records it meanwhile', async () => {
      const customerId = unique('cust');
      const request = { customerId, email: `${customerId}@example.com`, tier: 'basic' };
      const failing = createAwsClients();
      failAttempts(failing.apiGateway, 'CreateUsagePlanKeyCommand', awsError('ServiceUnavailableException', 503));
      await expect(
        provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(config, failing)),
      ).rejects.toBeInstanceOf(TransientAwsError);
      const [key] = await named(keyNameFor(config.keyNamePrefix, customerId));
      const keyId = String(key?.id);
      expect(key?.id).toBeDefined();
      expect(await registrationItem(customerId)).toMatchObject({ state: 'PENDING' });

      // The reconciler has listed the key (no record) and is about to act on it...
      const reconcileClients = createAwsClients();
      const paused = gate(reconcileClients.dynamo, 'UpdateItemCommand');
      const run = reconcileKeys({ now: fromNow(3 * HOUR), dryRun: false }, createReconcileDeps(config, reconcileClients));
      await heldAt(paused, run);

      // ...when the registration's retry records it.
      const resumed = await provisionKey({ registrationId: customerId, request, now: new Date() }, createProvisioningDeps(config));
      expect(resumed.registration).toMatchObject({ state: 'ACTIVE', keyId });

      paused.open();
      const report = await run;

      expect(report.actions).toEqual([expect.objectContaining({ kind: 'delete-orphan', keyId })]);
      expect(report.done['delete-orphan']).toBe(0);
      expect(report.failures).toBe(0);
      expect((await apiKey(keyId))?.enabled).toBe(true);
      expect(await plansOf(keyId)).toEqual([plan('basic')]);
      expect(await registrationItem(customerId)).toMatchObject({ state: 'ACTIVE', keyId });
      expect(await keyItem(customerId, keyId)).toMatchObject({ state: 'ACTIVE' });
      const emails = await emailsTo(request.email);
      expect(emails).toHaveLength(1);
      expect(emails[0]?.body).toContain(String(key?.value));
    });
  });

  it('takes leases from the clock, not from a late schedule event: a tier change meanwhile is told the customer is busy', async () => {
    const customer = await registerCustomer('basic', new Date(Date.now() - 91 * DAY));
    const clients = createAwsClients();
    const paused = gate(clients.apiGatewaySingleAttempt, 'CreateApiKeyCommand');

    // The schedule's event arrives two hours late: it decides which keys are due, not the lease.
    const run = rotateDueKeys(new Date(Date.now() - 2 * HOUR), 50, createRotationDeps(config, clients));
    await heldAt(paused, run);

    const busy = await putTier(customer.customerId, 'pro');
    expect(busy.statusCode).toBe(409);
    expect(parse(busy).type).toBe('urn:keyplan:problem:customer-busy');
    expect(Number(busy.headers?.['retry-after'])).toBeGreaterThan(0);

    paused.open();
    expect(await run).toMatchObject({ rotated: 1, busy: 0, failed: 0 });

    const successors = await named(successorName(customer.customerId));
    expect(successors).toHaveLength(1);
    const emails = await emailsTo(customer.email);
    // The registration's email, then exactly one with the successor.
    expect(emails).toHaveLength(2);
    expect(emails[1]?.body).toContain(String(successors[0]?.value));
    expect(await profile(customer.customerId)).toMatchObject({ tier: 'basic' });
    expect(await plansOf(String(successors[0]?.id))).toEqual([plan('basic')]);
    expect(await plansOf(customer.keyId)).toEqual([plan('basic')]);
  });

  it('refuses a duplicate registration of a customer being registered before it makes or emails a key', async () => {
    const customerId = unique('cust');
    const first = { customerId, email: `a-${customerId}@example.com`, tier: 'basic' };
    const clientsA = createAwsClients();
    const paused = gate(clientsA.apiGatewaySingleAttempt, 'CreateApiKeyCommand');
    const registrationA = postRegistrationHttp(first, unique('idem-a'), clientsA);
    await heldAt(paused, registrationA);

    const duplicate = await postRegistrationHttp({ ...first, email: `b-${customerId}@example.com` }, unique('idem-b'));

    expect(duplicate.statusCode).toBe(409);
    expect(parse(duplicate).type).toBe('urn:keyplan:problem:customer-already-registered');
    const direct = clientsAt(stack.endpoint);
    expect(await keysOfPrefix(direct, config.keyNamePrefix)).toEqual([]);
    const addresses = [first.email, `b-${customerId}@example.com`];
    const toEither = (email: { destinations: { ToAddresses?: string[] } }) =>
      (email.destinations.ToAddresses ?? []).some((to) => addresses.includes(to));
    expect((await allSentEmails(stack.endpoint)).filter(toEither)).toEqual([]);

    paused.open();
    const response = await registrationA;

    expect(response.statusCode).toBe(201);
    expect(parse(response)).toMatchObject({ status: 'ACTIVE' });
    const keys = await keysOfPrefix(direct, config.keyNamePrefix);
    expect(keys.map((key) => key.id)).toEqual([parse(response).keyId]);
    expect(keys[0]?.enabled).toBe(true);
    const emailsA = await emailsTo(first.email);
    expect(emailsA).toHaveLength(1);
    expect(emailsA[0]?.body).toContain(String(keys[0]?.value));
    expect(await emailsTo(`b-${customerId}@example.com`)).toEqual([]);
  });

  it('keeps a key due for rotation through a tier change that failed, was finished by the sweep, then succeeded', async () => {
    const customer = await registerCustomer('free');
    const clients = createAwsClients();
    // The new plan refuses the key, and so does the old one when it is put back.
    failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', awsError('BadRequestException', 400));

    const failed = await putTier(customer.customerId, 'pro', clients);

    expect(failed.statusCode).toBe(502);
    expect(parse(failed).type).toBe('urn:keyplan:problem:tier-change-failed');
    expect(await plansOf(customer.keyId)).toEqual([]);

    expect(await sweepAfterLeases()).toMatchObject({ finished: 1, failed: 0 });
    expect(await plansOf(customer.keyId)).toEqual([plan('free')]);

    const changed = await putTier(customer.customerId, 'pro');

    expect(changed.statusCode).toBe(200);
    expect(parse(changed)).toMatchObject({ from: 'free', to: 'pro', changed: true });
    expect(await plansOf(customer.keyId)).toEqual([plan('pro')]);
    const item = await keyItem(customer.customerId, customer.keyId);
    expect(item).toMatchObject({ state: 'ACTIVE', usagePlanId: plan('pro'), dueType: 'ROTATE', dueAt: item?.rotateAt });

    const run = await rotateDueKeys(new Date(Date.parse(String(item?.rotateAt)) + MINUTE), 50, createRotationDeps(config));

    expect(run).toMatchObject({ rotated: 1, failed: 0 });
    const [successor] = await named(successorName(customer.customerId));
    expect(await plansOf(String(successor?.id))).toEqual([plan('pro')]);
  });

  it("never touches another stage's keys, whether its prefix extends ours or its keys are named exactly like ours", async () => {
    const apiGateway = createAwsClients().apiGateway;
    const hex = () => randomBytes(16).toString('hex');
    const create = async (name: string, stage: string) =>
      String(
        (
          await apiGateway.send(
            new CreateApiKeyCommand({
              name,
              enabled: true,
              tags: { 'keyplan:managed': 'true', 'keyplan:stage': stage, 'keyplan:customer': unique('alice') },
            }),
          )
        ).id,
      );
    // Stage "other" with the prefix `${ours}-alice`, and a key of "other" under exactly our name scheme.
    const extendingPrefix = await create(`${config.keyNamePrefix}-alice-${hex()}`, 'other');
    const sameScheme = await create(`${config.keyNamePrefix}-${hex()}`, 'other');
    await apiGateway.send(new CreateUsagePlanKeyCommand({ usagePlanId: plan('basic'), keyId: sameScheme, keyType: 'API_KEY' }));
    // Our own stray, which the same run does delete: the run is not idle.
    const ownOrphan = await create(`${config.keyNamePrefix}-${hex()}`, config.stage);

    const report = await reconcileKeys({ now: fromNow(3 * HOUR), dryRun: false }, createReconcileDeps(config));

    expect(report.actions.map((action) => action.keyId)).toEqual([ownOrphan]);
    expect(report.done['delete-orphan']).toBe(1);
    expect(await apiKey(ownOrphan)).toBeUndefined();
    expect((await apiKey(extendingPrefix))?.enabled).toBe(true);
    expect((await apiKey(sameScheme))?.enabled).toBe(true);
    expect(await plansOf(sameScheme)).toEqual([plan('basic')]);
  });

  it('makes a revocation wait for an owed email being sent, then revokes: the email never undoes it', async () => {
    const customerId = unique('cust');
    const request = { customerId, email: `${customerId}@example.com`, tier: 'basic' };
    const failing = createAwsClients();
    failAttempts(failing.ses, 'SendEmailCommand', awsError('ServiceUnavailable', 503));
    const t0 = new Date();
    const { registration } = await provisionKey({ registrationId: customerId, request, now: t0 }, createProvisioningDeps(config, failing));
    expect(registration).toMatchObject({ state: 'EMAIL_PENDING' });
    const keyId = String(registration.keyId);

    // The resume sweep sends the owed email: held just before it is sent.
    const resumeClients = createAwsClients();
    const paused = gate(resumeClients.ses, 'SendEmailCommand');
    const resume = resumeStalledRegistrations(new Date(t0.getTime() + 16 * MINUTE), 100, createResumeDeps(config, resumeClients));
    await heldAt(paused, resume);

    const busy = await revokeHttp(customerId);
    expect(busy.statusCode).toBe(409);
    expect(parse(busy).type).toBe('urn:keyplan:problem:customer-busy');
    expect(Number(busy.headers?.['retry-after'])).toBeGreaterThan(0);

    paused.open();
    expect(await resume).toMatchObject({ resumed: 1, failed: 0, retryLater: 0 });
    expect(await emailsTo(request.email)).toHaveLength(1);

    const revoked = await revokeHttp(customerId);

    expect(revoked.statusCode).toBe(200);
    expect(parse(revoked)).toMatchObject({ status: 'REVOKED', disabledKeyIds: [keyId] });
    expect(await profile(customerId)).toMatchObject({ status: 'REVOKED' });
    const items = await keyItems(customerId);
    expect(items.map((item) => [item.keyId, item.state])).toEqual([[keyId, 'DISABLED']]);
    expect((await apiKey(keyId))?.enabled).toBe(false);
    expect(await registrationItem(customerId)).toMatchObject({ state: 'REVOKED' });
  });

  it('puts a key back into the plan of the tier on record when a tier change died between taking it out and putting it in', async () => {
    const customer = await registerCustomer('basic');
    const clients = createAwsClients();
    // The Lambda dies just before CreateUsagePlanKey: the gate is never opened.
    const died = gate(clients.apiGateway, 'CreateUsagePlanKeyCommand');
    const change = changeTier(
      { customerId: customer.customerId, tier: 'pro', requestId: unique('req'), now: new Date() },
      createCustomerDeps(config, clients),
    );
    await heldAt(died, change);
    expect(await plansOf(customer.keyId)).toEqual([]);

    // While its lease lasts the sweep leaves the holder alone.
    expect(await finishInterruptedOperations(new Date(), 50, createResumeDeps(config))).toMatchObject({ finished: 0 });

    expect(await sweepAfterLeases()).toMatchObject({ finished: 1, failed: 0 });

    expect(await plansOf(customer.keyId)).toEqual([plan('basic')]);
    expect(await profile(customer.customerId)).toMatchObject({ tier: 'basic', status: 'ACTIVE' });
    expect(await keyItem(customer.customerId, customer.keyId)).toMatchObject({ state: 'ACTIVE', usagePlanId: plan('basic') });
    // And the customer is free again.
    const changed = await putTier(customer.customerId, 'pro');
    expect(changed.statusCode).toBe(200);
    expect(await plansOf(customer.keyId)).toEqual([plan('pro')]);
  });

  it('never hands a customer whose revocation failed part-way a new key; the sweep finishes the revocation', async () => {
    const customer = await registerCustomer('basic');
    const clients = createAwsClients();
    // The keys are disabled; then the write that records the revocation fails.
    failAttempts(clients.dynamo, 'TransactWriteItemsCommand', awsError('InternalServerError', 500));

    await expect(revokeCustomer({ customerId: customer.customerId, now: new Date() }, createCustomerDeps(config, clients))).rejects.toBeInstanceOf(
      TransientAwsError,
    );

    expect((await apiKey(customer.keyId))?.enabled).toBe(false);
    const item = await keyItem(customer.customerId, customer.keyId);
    expect(item).toMatchObject({ state: 'ACTIVE', dueType: 'ROTATE' });

    const run = await rotateDueKeys(new Date(Date.parse(String(item?.rotateAt)) + MINUTE), 50, createRotationDeps(config));

    expect(run).toMatchObject({ rotated: 0, failed: 0 });
    expect(run.skipped + run.busy).toBe(1);
    expect(await named(successorName(customer.customerId))).toEqual([]);
    expect(await emailsTo(customer.email)).toHaveLength(1);

    expect(await sweepAfterLeases()).toMatchObject({ finished: 1, failed: 0 });

    expect(await profile(customer.customerId)).toMatchObject({ status: 'REVOKED' });
    expect(await keyItem(customer.customerId, customer.keyId)).toMatchObject({ state: 'DISABLED', dueType: 'DELETE' });
    expect((await apiKey(customer.keyId))?.enabled).toBe(false);
    expect(await rotateDueKeys(new Date(Date.parse(String(item?.rotateAt)) + MINUTE), 50, createRotationDeps(config))).toMatchObject({
      rotated: 0,
      skipped: 0,
      busy: 0,
    });
  });

  it('applies billing tier events newest first: an older event delivered later is acknowledged and dropped', async () => {
    const customer = await registerCustomer('free');
    const handler = tierChangeBatchHandler(createCustomerDeps(config));
    // EventBridge's envelope time, to the second.
    const eventTime = (msAgo: number) => fromNow(-msAgo).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const planChanged = (tier: string, time: string) =>
      sqsRecord({ id: unique('evt'), 'detail-type': 'PlanChanged', source: 'billing', time, detail: { customerId: customer.customerId, tier } });
    const t2 = eventTime(MINUTE);
    const t1 = eventTime(10 * MINUTE);

    const newer = (await handler(sqsEvent([planChanged('pro', t2)]), lambdaContext())) as SQSBatchResponse;
    // A retry of an older event, delivered in a later batch.
    const older = (await handler(sqsEvent([planChanged('basic', t1)]), lambdaContext())) as SQSBatchResponse;

    expect(newer.batchItemFailures).toEqual([]);
    expect(older.batchItemFailures).toEqual([]);
    expect(await profile(customer.customerId)).toMatchObject({ tier: 'pro', tierEventAt: new Date(t2).toISOString() });
    expect(await plansOf(customer.keyId)).toEqual([plan('pro')]);
  });
});
