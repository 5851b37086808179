import { GetUsageCommand } from '@aws-sdk/client-api-gateway';
import { SESClient, SendEmailCommand, SendRawEmailCommand } from '@aws-sdk/client-ses';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, vi } from 'vitest';
import { customerUsageRoutes } from '../../functions/customer-usage/routes';
import { ApiKeySecret } from '../../shared/api-key-secret';
import { KeyTable } from '../../shared/aws/key-table';
import { SesMailer } from '../../shared/aws/ses-mailer';
import { ValidationError } from '../../shared/errors';
import { httpHandler } from '../../shared/http/handler';
import { jsonResponse } from '../../shared/http/problem';
import { MAX_BODY_BYTES } from '../../shared/http/request';
import { logger } from '../../shared/logger';
import { buildKeyEmail, buildRetirementReminder } from '../../shared/core/key-email';
import { registrationRequestSchema } from '../../shared/provisioning/request-schema';
import { validate } from '../../shared/validation';
import { apiEvent, lambdaContext } from '../support/api-events';
import { awsError, mockedProvisioning, PLAN_FREE } from '../support/provisioning-fakes';

const body = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;

describe('request body limit', () => {
  /** A route that must never run for a refused body. */
  function guardedRoute() {
    const route = vi.fn(async (_event: APIGatewayProxyEvent) => jsonResponse(200, { ok: true }));
    const handler = httpHandler(route);
    const send = (payload: string, isBase64Encoded = false) =>
      handler({ ...apiEvent({ method: 'POST', resource: '/things', body: payload }), isBase64Encoded }, lambdaContext());
    return { route, send };
  }

  it('lets a body of exactly the limit through to the route', async () => {
    const { route, send } = guardedRoute();

    const response = await send('x'.repeat(MAX_BODY_BYTES));

    expect(MAX_BODY_BYTES).toBe(8192);
    expect(response.statusCode).toBe(200);
    expect(route).toHaveBeenCalledOnce();
  });

  it('answers 413 problem+json for one byte more, before the route (and so any parsing) runs', async () => {
    const { route, send } = guardedRoute();

    const response = await send('x'.repeat(MAX_BODY_BYTES + 1));

    expect(response.statusCode).toBe(413);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(body(response)).toEqual({
      type: 'urn:keyplan:problem:payload-too-large',
      title: 'Request body too large',
      status: 413,
      detail: 'the body is larger than 8192 bytes',
    });
    expect(route).not.toHaveBeenCalled();
  });

  it('counts bytes, not characters: 4,097 two-byte characters are over the limit', async () => {
    const { route, send } = guardedRoute();

    const response = await send('é'.repeat(4097));

    expect(response.statusCode).toBe(413);
    expect(route).not.toHaveBeenCalled();
  });

  it('counts the decoded bytes of a base64 body: 8,192 bytes pass (10,924 characters encoded), 8,193 do not', async () => {
    const { route, send } = guardedRoute();
    const atLimit = Buffer.alloc(MAX_BODY_BYTES, 1).toString('base64');
    const overLimit = Buffer.alloc(MAX_BODY_BYTES + 1, 1).toString('base64');

    const accepted = await send(atLimit, true);
    const refused = await send(overLimit, true);

    expect(atLimit.length).toBeGreaterThan(MAX_BODY_BYTES);
    expect(accepted.statusCode).toBe(200);
    expect(refused.statusCode).toBe(413);
    expect(route).toHaveBeenCalledOnce();
  });

  it("refuses up to API Gateway's own 10 MB on any route, one that takes no body included: the limit is one place for all", async () => {
    const route = vi.fn(async (_event: APIGatewayProxyEvent) => jsonResponse(200, { ok: true }));
    const event = apiEvent({ method: 'GET', resource: '/things', body: 'p'.repeat(10 * 1024 * 1024) });

    const response = await httpHandler(route)(event, lambdaContext());

    expect(response.statusCode).toBe(413);
    expect(route).not.toHaveBeenCalled();
  });
});

describe('emails are built without header injection', () => {
  const schema = registrationRequestSchema(['free']);
  const valid = { customerId: 'cust-1', email: 'ada@example.com', tier: 'free' };
  const refusalOf = (request: unknown): unknown => {
    try {
      validate(schema, request);
    } catch (error) {
      return error;
    }
    return undefined;
  };

  // Each would add a header, a recipient or a line to a raw message if it reached one.
  it.each([
    ['email', 'ada@example.com\r\nBcc: eve@evil.test'],
    ['email', 'ada@example.com\nBcc: eve@evil.test'],
    ['email', 'ada@example.com\rBcc: eve@evil.test'],
    ['email', 'ada@example.com\u0000'],
    ['email', 'ada@example.com\u2028Bcc: eve@evil.test'],
    ['email', 'ada@example.com\u0085Bcc: eve@evil.test'],
    ['email', 'ada@example.com, eve@evil.test'],
    ['email', 'ada@example.com;eve@evil.test'],
    ['email', 'Ada <ada@example.com>'],
    ['email', '"ada\r\nBcc: eve@evil.test"@example.com'],
    ['email', '=?utf-8?b?QmNjOiBldmVAZXZpbC50ZXN0?=@example.com'],
    ['email', ' ada@example.com'],
    ['name', 'Ada\r\nBcc: eve@evil.test'],
    ['name', 'Ada\nSubject: free keys'],
    ['name', 'Ada\u2028Lovelace'],
    ['name', 'Ada\u0085Lovelace'],
    ['name', 'Ada\u202Eecalevol'],
    ['name', 'Ada\u0000'],
    ['customerId', 'cust-1\r\nBcc: eve@evil.test'],
    ['customerId', 'cust-1\n'],
    ['customerId', 'cust 1'],
  ])('refuses %s %j with a ValidationError naming the field', (field, value) => {
    const refusal = refusalOf({ ...valid, [field]: value });

    expect(refusal).toBeInstanceOf(ValidationError);
    expect(refusal).toMatchObject({ field });
  });

  it('drops surrounding white space from a name, so a trailing line break never reaches the email', () => {
    const request = validate(schema, { ...valid, name: '\r\n Ada Lovelace \r\n' });

    expect(request.name).toBe('Ada Lovelace');
  });

  it('puts customer input into no header: the recipient is the validated address, the subjects are constants', () => {
    const hostile = 'Ada\r\nBcc: eve@evil.test';

    const keyEmail = buildKeyEmail({
      to: 'ada@example.com',
      name: hostile,
      tier: 'free',
      secret: new ApiKeySecret('Zq3vR8sT1uW4xY7zA0bC2dE5fG9hJ6kL'),
      limits: {},
    });
    const reminder = buildRetirementReminder({ to: 'ada@example.com', fingerprint: 'abcd1234', until: new Date(0) });

    expect([keyEmail.to, keyEmail.subject]).toEqual(['ada@example.com', 'Your API key']);
    expect([reminder.to, reminder.subject]).toEqual(['ada@example.com', 'Your previous API key stops working soon']);
  });

  it('sends through SendEmail with structured Destination and Subject, never a raw MIME message', async () => {
    const ses = new SESClient({ region: 'us-east-1' });
    const sesMock = mockClient(ses);
    sesMock.on(SendEmailCommand).resolves({ MessageId: 'm-1' });
    const mailer = new SesMailer({ client: ses, sender: 'keys@example.com' });

    await mailer.send(
      buildKeyEmail({
        to: 'ada@example.com',
        name: 'Ada\nBcc: eve@evil.test',
        tier: 'free',
        secret: new ApiKeySecret('Zq3vR8sT1uW4xY7zA0bC2dE5fG9hJ6kL'),
        limits: {},
      }),
    );

    expect(sesMock.commandCalls(SendRawEmailCommand)).toHaveLength(0);
    const [call] = sesMock.commandCalls(SendEmailCommand);
    expect(call?.args[0].input).toMatchObject({
      Source: 'keys@example.com',
      Destination: { ToAddresses: ['ada@example.com'] },
      Message: { Subject: { Data: 'Your API key', Charset: 'UTF-8' } },
    });
    expect(call?.args[0].input.Destination).toEqual({ ToAddresses: ['ada@example.com'] });
  });
});

describe('errors never echo internals', () => {
  const ARN = 'arn:aws:dynamodb:eu-west-1:123456789012:table/keyplan-prod';
  const LEAKS = [/arn:/, /keyplan-prod/, /123456789012/, /Exception/, /Error:?/, /\bat \S+ \(/, /stack/i, /Cannot read/, /usageplans/];
  const GENERIC = {
    type: 'urn:keyplan:problem:internal-error',
    title: 'Internal error',
    status: 500,
    detail: 'An internal error occurred. It has been logged; quote the request id when reporting it. (request id aws-request-1)',
  };

  /** The usage route over the real adapters, with one live key, through the shared HTTP handler. */
  function usageRoute() {
    const m = mockedProvisioning();
    const items = [
      {
        pk: 'CUSTOMER#cust-1',
        sk: 'KEY#k-1',
        customerId: 'cust-1',
        keyId: 'k-1',
        state: 'ACTIVE',
        usagePlanId: PLAN_FREE,
        tier: 'free',
        registrationId: 'reg-1',
        createdAt: '2026-01-01T00:00:00.000Z',
        generation: 1,
      },
    ];
    m.dynamoMock.on(QueryCommand).resolves({ Items: items });
    const keyStore = new KeyTable({ client: m.dynamo, tableName: 'keyplan-prod' });
    const route = httpHandler(customerUsageRoutes({ keys: m.usageKeys, keyStore }));
    const get = () =>
      route(
        {
          ...apiEvent({ method: 'GET', resource: '/customers/{customerId}/usage', pathParameters: { customerId: 'cust-1' } }),
          queryStringParameters: { from: '2026-01-01', to: '2026-01-02' },
        },
        lambdaContext(),
      );
    return { ...m, get };
  }

  function expectGeneric(response: APIGatewayProxyResult) {
    expect(response.statusCode).toBe(500);
    expect(response.headers).toEqual({ 'content-type': 'application/problem+json' });
    expect(body(response)).toEqual(GENERIC);
    for (const leak of LEAKS) expect(response.body).not.toMatch(leak);
  }

  it('answers a plain TypeError from a route with the generic problem only, and logs it instead', async () => {
    const logged = vi.spyOn(logger, 'error');
    const route = httpHandler(async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'keyId')");
    });

    const response = await route(apiEvent({ method: 'GET', resource: '/things' }), lambdaContext());

    expectGeneric(response);
    expect(logged).toHaveBeenCalledWith('request failed', expect.objectContaining({ status: 500, error: expect.any(TypeError) }));
  });

  it('answers an error whose message holds an ARN, a table name and a stack trace with the generic problem only', async () => {
    const route = httpHandler(async () => {
      throw new Error(`ValidationException: One or more parameter values were invalid (${ARN})\n    at Table.query (/var/task/index.mjs:1:2345)`);
    });

    expectGeneric(await route(apiEvent({ method: 'GET', resource: '/things' }), lambdaContext()));
  });

  it("answers DynamoDB's ResourceNotFoundException (a missing table: not the caller's fault) with the generic problem", async () => {
    const m = usageRoute();
    m.dynamoMock
      .on(QueryCommand)
      .rejects(Object.assign(awsError('ResourceNotFoundException', 400), { message: `Requested resource not found: Table: keyplan-prod not found (${ARN})` }));

    expectGeneric(await m.get());
  });

  it.each([
    ['AccessDeniedException', 403, 'User: arn:aws:sts::123456789012:assumed-role/keyplan-prod-customerUsage is not authorized to perform: apigateway:GET on resource: arn:aws:apigateway:eu-west-1::/usageplans/p-1/usage'],
    ['NotFoundException', 404, 'Invalid Usage Plan ID specified: arn:aws:apigateway:eu-west-1::/usageplans/p-1'],
    ['BadRequestException', 400, 'Invalid startDate for keyplan-prod at /usageplans/p-1/usage'],
  ])("answers API Gateway's %s (%i, not the caller's fault) with 500 and the generic problem, not AWS's status or message", async (name, status, message) => {
    const m = usageRoute();
    // As the SDK throws a modelled AWS error: `$fault` set (a 404 without it is an unserved route).
    m.apiGatewayMock.on(GetUsageCommand).rejects(Object.assign(awsError(name, status), { message, $fault: 'client' }));

    expectGeneric(await m.get());
  });

  it("answers AWS's throttling with 503 and Retry-After, naming neither the operation nor AWS's error", async () => {
    const m = usageRoute();
    m.apiGatewayMock
      .on(GetUsageCommand)
      .rejects(Object.assign(awsError('TooManyRequestsException', 429), { message: `Rate exceeded for ${ARN}` }));

    const response = await m.get();

    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toMatch(/^\d+$/);
    expect(body(response)).toMatchObject({ type: 'urn:keyplan:problem:service-unavailable', status: 503 });
    expect(response.body).not.toMatch(/GetUsage|TooManyRequests|Rate exceeded/);
    for (const leak of LEAKS) expect(response.body).not.toMatch(leak);
  });
});
