import { GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyResult, SQSBatchResponse } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { createAwsClients } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { changeTier } from '../../shared/customers/change-tier';
import { httpHandler } from '../../shared/http/handler';
import {
  createCustomerDeps,
  createEnqueueDeps,
  createResumeDeps,
  createRotationDeps,
} from '../../shared/wiring/compose';
import { finishInterruptedOperations } from '../../shared/sweep/finish-interrupted';
import { rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { changeTierRoutes } from '../../functions/change-tier/routes';
import { tierChangeBatchHandler } from '../../functions/change-tier-events/batch';
import { registerRoutes } from '../../functions/register/routes';
import { revokeCustomerRoutes } from '../../functions/revoke-customer/routes';
import { apiEvent, lambdaContext, postRegistration } from '../support/api-events';
import { failAttempts, itemsOfCustomer, plansOfKey } from '../support/emulator-probe';
import { sqsEvent, sqsRecord } from '../support/sqs-events';

const stack = inject('localStack');
let config: Config;
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;
const parse = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;
type Clients = ReturnType<typeof createAwsClients>;

beforeAll(() => {
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig({ ...functionEnvironment(stack), MANAGEMENT_CALLS_PER_SECOND: '500' });
});

async function register(tier = 'free', body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const customerId = String(body.customerId ?? unique('cust'));
  const response = await httpHandler(registerRoutes(createEnqueueDeps(config)))(
    postRegistration({ customerId, email: `${customerId}@example.com`, tier, ...body }, headers),
    lambdaContext(),
  );
  return { customerId, response };
}

const putTier = (customerId: string, tier: string, inject?: (clients: Clients) => void) => {
  const clients = createAwsClients();
  inject?.(clients);
  return httpHandler(changeTierRoutes(createCustomerDeps(config, clients)))(
    apiEvent({ method: 'PUT', resource: '/customers/{customerId}/tier', pathParameters: { customerId }, body: JSON.stringify({ tier }) }),
    lambdaContext(),
  );
};

const revoke = (customerId: string) =>
  httpHandler(revokeCustomerRoutes(createCustomerDeps(config)))(
    apiEvent({ method: 'DELETE', resource: '/customers/{customerId}/keys', pathParameters: { customerId } }),
    lambdaContext(),
  );

async function liveKeys(customerId: string) {
  const items = await itemsOfCustomer(createAwsClients().dynamo, stack.tableName, customerId);
  return items.filter((item) => String(item.sk).startsWith('KEY#') && ['ACTIVE', 'RETIRING'].includes(String(item.state)));
}

const profile = async (customerId: string) =>
  (await createAwsClients().dynamo.send(
    new GetCommand({ TableName: stack.tableName, Key: { pk: `CUSTOMER#${customerId}`, sk: 'PROFILE' } }),
  )).Item;

describe('PUT /customers/{customerId}/tier', () => {
  it('moves every live key from free to pro and into no other plan, recording the history', async () => {
    const { customerId } = await register('free');
    // A rotation with grace leaves two live keys: the new ACTIVE one and the old RETIRING one.
    await rotateCustomerKeys(customerId, { now: new Date(), graceDays: 7 }, createRotationDeps(config));
    expect(await liveKeys(customerId)).toHaveLength(2);

    const response = await putTier(customerId, 'pro');

    expect(response.statusCode).toBe(200);
    expect(parse(response)).toMatchObject({ from: 'free', to: 'pro', changed: true });
    for (const key of await liveKeys(customerId)) {
      expect(await plansOfKey(createAwsClients().apiGateway, String(key.keyId))).toEqual([stack.usagePlans.pro]);
      expect(key).toMatchObject({ usagePlanId: stack.usagePlans.pro, tier: 'pro' });
    }
    expect(await profile(customerId)).toMatchObject({
      tier: 'pro',
      tierHistory: [expect.objectContaining({ from: 'free', to: 'pro', requestId: 'request-1' })],
    });

    const again = await putTier(customerId, 'pro');
    expect(again.statusCode).toBe(200);
    expect(parse(again)).toMatchObject({ changed: false });
  });

  it('puts the key back into the old plan and answers problem+json when the new plan refuses it', async () => {
    const { customerId } = await register('free');
    const [key] = await liveKeys(customerId);

    const response = await putTier(customerId, 'pro', (clients) =>
      failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', () =>
        Object.assign(new Error('refused'), { name: 'BadRequestException', $metadata: { httpStatusCode: 400 } }),
      1),
    );

    expect(response.statusCode).toBe(502);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(parse(response).type).toBe('urn:keyplan:problem:tier-change-failed');
    expect(await plansOfKey(createAwsClients().apiGateway, String(key?.keyId))).toEqual([stack.usagePlans.free]);
    expect(await profile(customerId)).toMatchObject({ tier: 'free' });
  });

  it('leaves the key to the sweep when putting it back fails too, which puts it into the old plan', async () => {
    const { customerId } = await register('free');
    const [key] = await liveKeys(customerId);

    const response = await putTier(customerId, 'pro', (clients) =>
      failAttempts(clients.apiGateway, 'CreateUsagePlanKeyCommand', () =>
        Object.assign(new Error('refused'), { name: 'BadRequestException', $metadata: { httpStatusCode: 400 } }),
      ),
    );

    expect(response.statusCode).toBe(502);
    expect(parse(response)).toMatchObject({ type: 'urn:keyplan:problem:tier-change-failed' });
    // The customer is held for the sweep (due at once), and answers busy meanwhile.
    expect(await profile(customerId)).toMatchObject({ tier: 'free', dueType: 'REPAIR', lease: { mustFinish: true } });
    expect((await putTier(customerId, 'pro')).statusCode).toBe(409);

    const report = await finishInterruptedOperations(new Date(), 10, createResumeDeps(config));

    expect(report).toMatchObject({ finished: 1, failed: 0 });
    expect(await plansOfKey(createAwsClients().apiGateway, String(key?.keyId))).toEqual([stack.usagePlans.free]);
    const after = await profile(customerId);
    expect(after?.lease).toBeUndefined();
    expect(after?.dueType).toBeUndefined();
  });

  it('keeps a tier change and a rotation of one customer apart; every live key ends in the final tier plan', async () => {
    const { customerId } = await register('free');

    const outcomes = await Promise.allSettled([
      changeTier({ customerId, tier: 'pro', requestId: 'billing-1', now: new Date() }, createCustomerDeps(config)),
      rotateCustomerKeys(customerId, { now: new Date(), graceDays: 7 }, createRotationDeps(config)),
    ]);

    // The loser, if they met, was told the customer is busy; nothing else went wrong.
    const refusals = outcomes.flatMap((o) => (o.status === 'rejected' ? [(o.reason as Error).name] : []));
    expect(refusals).toEqual(refusals.map(() => 'CustomerBusyError'));
    const finalTier = String((await profile(customerId))?.tier);
    const plan = stack.usagePlans[finalTier];
    for (const key of await liveKeys(customerId)) {
      expect(await plansOfKey(createAwsClients().apiGateway, String(key.keyId))).toEqual([plan]);
    }
  });

  it('answers 400 for an unknown tier and 404 for an unknown customer', async () => {
    const badTier = await putTier('cust-1', 'platinum');
    expect(badTier.statusCode).toBe(400);
    expect(parse(badTier)).toMatchObject({ field: 'tier' });
    const unknown = await putTier(unique('nobody'), 'pro');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers?.['content-type']).toBe('application/problem+json');
  });

  it('applies a billing "plan changed" event from the queue, and returns it while the customer is busy', async () => {
    const { customerId } = await register('basic');
    const record = sqsRecord({ id: unique('evt'), 'detail-type': 'PlanChanged', detail: { customerId, tier: 'pro' } });
    const deps = createCustomerDeps(config);
    const now = new Date();
    const locked = await deps.ledger.acquire(
      customerId,
      { owner: 'someone-else', until: now.getTime() + 30_000, intent: { operation: 'reconcile' }, mustFinish: false },
      now,
    );
    expect(locked.kind).toBe('acquired');

    const busy = (await tierChangeBatchHandler(deps)(sqsEvent([record]), lambdaContext())) as SQSBatchResponse;
    expect(busy.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);

    await deps.ledger.release(customerId, 'someone-else');
    const applied = (await tierChangeBatchHandler(deps)(sqsEvent([record]), lambdaContext())) as SQSBatchResponse;
    expect(applied.batchItemFailures).toEqual([]);
    expect(await profile(customerId)).toMatchObject({ tier: 'pro' });
  });
});

describe('DELETE /customers/{customerId}/keys', () => {
  it('disables every key and refuses a later registration unless it is an explicit re-activation', async () => {
    const { customerId } = await register('free');
    await rotateCustomerKeys(customerId, { now: new Date(), graceDays: 7 }, createRotationDeps(config));
    const keys = await liveKeys(customerId);

    const response = await revoke(customerId);

    expect(response.statusCode).toBe(200);
    expect(parse(response)).toMatchObject({ status: 'REVOKED' });
    for (const key of keys) {
      const apiKey = await createAwsClients().apiGateway.send(new GetApiKeyCommand({ apiKey: String(key.keyId) }));
      expect(apiKey.enabled).toBe(false);
    }
    expect(await liveKeys(customerId)).toEqual([]);
    expect(await profile(customerId)).toMatchObject({ status: 'REVOKED' });

    const replay = await register('free', { customerId });
    expect(replay.response.statusCode).toBe(409);
    expect(parse(replay.response).type).toBe('urn:keyplan:problem:customer-revoked');
    const otherId = await register('free', { customerId }, { 'Idempotency-Key': unique('again') });
    expect(otherId.response.statusCode).toBe(409);
    expect(parse(otherId.response).type).toBe('urn:keyplan:problem:customer-revoked');

    const reactivated = await register('pro', { customerId, reactivate: true }, { 'Idempotency-Key': unique('reactivate') });
    expect(reactivated.response.statusCode).toBe(201);
    expect(await profile(customerId)).toMatchObject({ status: 'ACTIVE', tier: 'pro' });
    expect(await liveKeys(customerId)).toHaveLength(1);
  });

  it('answers 404 for an unknown customer', async () => {
    expect((await revoke(unique('nobody'))).statusCode).toBe(404);
  });
});
