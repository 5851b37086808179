import { GetUsageCommand, NotFoundException } from '@aws-sdk/client-api-gateway';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { customerUsageRoutes } from '../../functions/customer-usage/routes';
import { KeyTable } from '../../shared/aws/key-table';
import { httpHandler } from '../../shared/http/handler';
import type { KeyState } from '../../shared/core/model';
import type { UsageDeps } from '../../shared/usage/get-customer-usage';
import { apiEvent, lambdaContext } from '../support/api-events';
import { awsError, mockedProvisioning, PLAN_FREE, PLAN_PRO } from '../support/provisioning-fakes';

const keyItem = (keyId: string, state: KeyState, usagePlanId = PLAN_FREE) => ({
  pk: 'CUSTOMER#cust-1',
  sk: `KEY#${keyId}`,
  customerId: 'cust-1',
  keyId,
  state,
  usagePlanId,
  tier: usagePlanId === PLAN_PRO ? 'pro' : 'free',
  registrationId: 'reg-1',
  createdAt: '2026-01-01T00:00:00.000Z',
  generation: 1,
});

/** The usage route over the real adapters, with the key items the table answers. */
function usageRoute(items: Record<string, unknown>[]) {
  const m = mockedProvisioning();
  m.dynamoMock.on(QueryCommand).resolves({ Items: items });
  const deps: UsageDeps = { keys: m.usageKeys, keyStore: new KeyTable({ client: m.dynamo, tableName: 'keyplan-test' }) };
  const route = httpHandler(customerUsageRoutes(deps));
  const get = (query: Record<string, string> | null, customerId = 'cust-1'): Promise<APIGatewayProxyResult> =>
    route(
      {
        ...apiEvent({ method: 'GET', resource: '/customers/{customerId}/usage', pathParameters: { customerId } }),
        queryStringParameters: query,
      },
      lambdaContext(),
    );
  return { ...m, get };
}

const body = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;

/**
 * What the SDK throws against moto 5.2.5, which has no GetUsage route: its web server answers a
 * 404 HTML page, the JSON error parser fails on it, and the SDK rethrows the parser's SyntaxError
 * with the response attached (hidden) and its metadata. No `$fault`, no `x-amzn-errortype`.
 */
function motoUnservedRouteError(): Error {
  const error = new SyntaxError(
    `Unexpected token '<', "<!doctype "... is not valid JSON\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.`,
  );
  Object.defineProperty(error, '$response', {
    enumerable: false,
    value: {
      statusCode: 404,
      headers: { server: 'Werkzeug/3.1.9 Python/3.11.7', 'content-type': 'text/html; charset=utf-8', 'content-length': '207' },
      body: '<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n',
    },
  });
  return Object.assign(error, {
    $metadata: { httpStatusCode: 404, requestId: undefined, attempts: 1, totalRetryDelay: 0 },
  });
}

describe('GET /customers/{customerId}/usage', () => {
  it("answers each live key's usage per UTC day, joining GetUsage pages, with used 0 and remaining null for days API Gateway left out", async () => {
    const m = usageRoute([
      keyItem('k-active', 'ACTIVE'),
      keyItem('k-retiring', 'RETIRING', PLAN_PRO),
      keyItem('k-disabled', 'DISABLED'),
    ]);
    m.apiGatewayMock.on(GetUsageCommand).callsFake((input: { keyId: string; position?: string }) => {
      const answer = { usagePlanId: PLAN_FREE, startDate: '2028-02-27', endDate: '2028-03-01' };
      if (input.keyId === 'k-retiring') {
        // A key with no usage in the range is missing from `items`; a stray key is not ours.
        return { ...answer, usagePlanId: PLAN_PRO, items: { 'someone-else': [[9, 1]] } };
      }
      return input.position === undefined
        ? { ...answer, items: { 'k-active': [[5, 995], [7, 993]] }, position: 'page-2' }
        : { ...answer, items: { 'k-active': [[0, 1000]] } };
    });

    // 2028 is a leap year: the range crosses 29 February.
    const response = await m.get({ from: '2028-02-27', to: '2028-03-01' });

    expect(response.statusCode).toBe(200);
    expect(body(response)).toEqual({
      customerId: 'cust-1',
      from: '2028-02-27',
      to: '2028-03-01',
      keys: [
        {
          keyId: 'k-active',
          state: 'ACTIVE',
          usagePlanId: PLAN_FREE,
          days: [
            { date: '2028-02-27', used: 5, remaining: 995 },
            { date: '2028-02-28', used: 7, remaining: 993 },
            { date: '2028-02-29', used: 0, remaining: 1000 },
            // The answer stopped short of the range: nothing was counted that day.
            { date: '2028-03-01', used: 0, remaining: null },
          ],
        },
        {
          keyId: 'k-retiring',
          state: 'RETIRING',
          usagePlanId: PLAN_PRO,
          days: ['2028-02-27', '2028-02-28', '2028-02-29', '2028-03-01'].map((date) => ({ date, used: 0, remaining: null })),
        },
      ],
    });
    expect(m.apiGatewayMock.commandCalls(GetUsageCommand).map((call) => call.args[0].input)).toEqual([
      { usagePlanId: PLAN_FREE, keyId: 'k-active', startDate: '2028-02-27', endDate: '2028-03-01', limit: 500 },
      {
        usagePlanId: PLAN_FREE,
        keyId: 'k-active',
        startDate: '2028-02-27',
        endDate: '2028-03-01',
        limit: 500,
        position: 'page-2',
      },
      { usagePlanId: PLAN_PRO, keyId: 'k-retiring', startDate: '2028-02-27', endDate: '2028-03-01', limit: 500 },
    ]);
  });

  it('accepts a range of exactly 90 days, both ends included', async () => {
    const m = usageRoute([keyItem('k-active', 'ACTIVE')]);
    m.apiGatewayMock.on(GetUsageCommand).resolves({ items: {} });

    const response = await m.get({ from: '2026-01-01', to: '2026-03-31' });

    expect(response.statusCode).toBe(200);
    const [key] = body(response).keys as { days: { date: string }[] }[];
    expect(key?.days).toHaveLength(90);
    expect(key?.days.at(-1)?.date).toBe('2026-03-31');
  });

  it.each([
    ['no query string', null, 'from', 'from is required'],
    ['no to', { from: '2026-01-01' }, 'to', 'to is required'],
    ['a malformed from', { from: '2026-1-01', to: '2026-01-31' }, 'from', 'from must be a date YYYY-MM-DD'],
    ['a date that does not exist', { from: '2026-02-01', to: '2026-02-30' }, 'to', 'to must be a date YYYY-MM-DD'],
    ['a timestamp instead of a date', { from: '2026-02-01T00:00:00Z', to: '2026-02-03' }, 'from', 'from must be a date YYYY-MM-DD'],
    ['from after to', { from: '2026-02-02', to: '2026-02-01' }, 'from', 'from must not be after to'],
    ['91 days', { from: '2026-01-01', to: '2026-04-01' }, 'to', 'to must be at most 89 days after from: a range is at most 90 days'],
  ])('answers 400 naming the field for %s, without any AWS call', async (_, query, field, detail) => {
    const m = usageRoute([keyItem('k-active', 'ACTIVE')]);

    const response = await m.get(query);

    expect(response.statusCode).toBe(400);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(body(response)).toMatchObject({ type: 'urn:keyplan:problem:validation-failed', field, detail });
    expect(m.dynamoMock.calls()).toHaveLength(0);
    expect(m.apiGatewayMock.calls()).toHaveLength(0);
  });

  it('answers 400 for a malformed customer id', async () => {
    const m = usageRoute([]);

    const response = await m.get({ from: '2026-01-01', to: '2026-01-02' }, 'cust 1');

    expect(body(response)).toMatchObject({
      status: 400,
      field: 'customerId',
      detail: 'customerId may contain only letters, digits and . _ : -',
    });
    expect(m.dynamoMock.calls()).toHaveLength(0);
  });

  it('answers 404 for a customer without key items', async () => {
    const m = usageRoute([]);

    const response = await m.get({ from: '2026-01-01', to: '2026-01-02' });

    expect(response.statusCode).toBe(404);
    expect(body(response)).toMatchObject({ type: 'urn:keyplan:problem:not-found' });
    expect(m.apiGatewayMock.commandCalls(GetUsageCommand)).toHaveLength(0);
  });

  it('answers 200 with no keys for a customer whose keys no longer work', async () => {
    const m = usageRoute([keyItem('k-old', 'DELETED'), keyItem('k-off', 'DISABLED')]);

    const response = await m.get({ from: '2026-01-01', to: '2026-01-02' });

    expect(response.statusCode).toBe(200);
    expect(body(response)).toMatchObject({ keys: [] });
    expect(m.apiGatewayMock.commandCalls(GetUsageCommand)).toHaveLength(0);
  });

  it('answers 501 when the endpoint does not serve GetUsage (what the SDK throws against moto), without internals', async () => {
    const m = usageRoute([keyItem('k-active', 'ACTIVE')]);
    m.apiGatewayMock.on(GetUsageCommand).rejects(motoUnservedRouteError());

    const response = await m.get({ from: '2026-01-01', to: '2026-01-02' });

    expect(response.statusCode).toBe(501);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(body(response)).toMatchObject({
      type: 'urn:keyplan:problem:usage-unavailable',
      title: 'Usage data unavailable',
      status: 501,
      detail: expect.stringMatching(/^Usage data is unavailable from this AWS endpoint/),
    });
    expect(response.body).not.toMatch(/doctype|SyntaxError|JSON|Werkzeug/);
  });

  it("does not take API Gateway's own NotFoundException (an unknown usage plan) for an unserved route", async () => {
    const m = usageRoute([keyItem('k-active', 'ACTIVE')]);
    m.apiGatewayMock
      .on(GetUsageCommand)
      .rejects(new NotFoundException({ message: 'Invalid Usage Plan ID specified', $metadata: { httpStatusCode: 404 } }));

    const response = await m.get({ from: '2026-01-01', to: '2026-01-02' });

    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('Usage Plan');
  });

  it('answers 503 with Retry-After when API Gateway keeps throttling', async () => {
    const m = usageRoute([keyItem('k-active', 'ACTIVE')]);
    m.apiGatewayMock.on(GetUsageCommand).rejects(awsError('TooManyRequestsException', 429));

    const response = await m.get({ from: '2026-01-01', to: '2026-01-02' });

    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toBeDefined();
  });
});
