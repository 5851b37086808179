import {
  APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  GetUsagePlanCommand,
} from '@aws-sdk/client-api-gateway';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SendEmailCommand, SESClient } from '@aws-sdk/client-ses';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { apiEvent, lambdaContext, postRegistration, useHandlerEnvironment } from '../support/api-events';

const valid = { customerId: 'cust-1', email: 'ada@example.com', tier: 'free' };
const with_ = (patch: Record<string, unknown>) => ({ ...valid, ...patch });
const without = (field: keyof typeof valid) => Object.fromEntries(Object.entries(valid).filter(([k]) => k !== field));

/** [case, event body or raw string, extra headers, the field the answer must name] */
const malformed: [string, unknown, Record<string, string>, string][] = [
  ['no body', '', {}, 'body'],
  ['bad JSON', '{"customerId":', {}, 'body'],
  ['JSON that is not an object', '[1,2,3]', {}, 'body'],
  ['a JSON string', '"hello"', {}, 'body'],
  ['null', 'null', {}, 'body'],
  ['missing customerId', without('customerId'), {}, 'customerId'],
  ['missing email', without('email'), {}, 'email'],
  ['missing tier', without('tier'), {}, 'tier'],
  ['an extra field', with_({ admin: true }), {}, 'admin'],
  ['a key value smuggled in', with_({ value: 'x'.repeat(30) }), {}, 'value'],
  ['unknown tier', with_({ tier: 'platinum' }), {}, 'tier'],
  ['tier of the wrong case', with_({ tier: 'FREE' }), {}, 'tier'],
  ['numeric customerId', with_({ customerId: 42 }), {}, 'customerId'],
  ['empty customerId', with_({ customerId: '' }), {}, 'customerId'],
  ['customerId with a slash', with_({ customerId: 'a/b' }), {}, 'customerId'],
  ['customerId with a newline', with_({ customerId: 'a\nb' }), {}, 'customerId'],
  ['customerId too long', with_({ customerId: 'c'.repeat(65) }), {}, 'customerId'],
  ['email without @', with_({ email: 'ada.example.com' }), {}, 'email'],
  ['email with a header injection', with_({ email: 'ada@example.com\r\nBcc: eve@evil.test' }), {}, 'email'],
  ['email with two recipients', with_({ email: 'ada@example.com,eve@evil.test' }), {}, 'email'],
  ['email with a display name', with_({ email: 'Ada <ada@example.com>' }), {}, 'email'],
  ['email as an array', with_({ email: ['ada@example.com'] }), {}, 'email'],
  ['email too long', with_({ email: `${'a'.repeat(250)}@example.com` }), {}, 'email'],
  ['name with control characters', with_({ name: 'Ada\u0000Lovelace' }), {}, 'name'],
  ['name with a newline', with_({ name: 'Ada\r\nBcc: x' }), {}, 'name'],
  ['name as an object', with_({ name: { first: 'Ada' } }), {}, 'name'],
  ['name too long', with_({ name: 'n'.repeat(101) }), {}, 'name'],
  ['name of only white space', with_({ name: ' \t ' }), {}, 'name'],
  ['name with a bidirectional override', with_({ name: 'Ada\u202Eecalevol' }), {}, 'name'],
  ['name with a lone surrogate', with_({ name: 'Ada\uD800' }), {}, 'name'],
  ['email with a Unicode line separator', with_({ email: 'ada@example.com\u2028Bcc: eve@evil.test' }), {}, 'email'],
  ['Idempotency-Key with spaces', valid, { 'Idempotency-Key': 'two words' }, 'Idempotency-Key'],
  ['Idempotency-Key too long', valid, { 'Idempotency-Key': 'k'.repeat(129) }, 'Idempotency-Key'],
  ['Idempotency-Key with a newline', valid, { 'Idempotency-Key': 'a\nb' }, 'Idempotency-Key'],
];

describe('register handler', () => {
  const apiGateway = mockClient(APIGatewayClient);
  const dynamo = mockClient(DynamoDBDocumentClient);
  const ses = mockClient(SESClient);
  const sqs = mockClient(SQSClient);
  let handler: (event: unknown, context: unknown) => Promise<APIGatewayProxyResult>;

  beforeAll(async () => {
    useHandlerEnvironment({ QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/keyplan-test' });
    ({ handler } = (await import('../../functions/register/handler')) as unknown as { handler: typeof handler });
  });

  beforeEach(() => {
    for (const mock of [apiGateway, dynamo, ses, sqs]) mock.reset();
  });

  afterAll(() => {
    apiGateway.restore();
    dynamo.restore();
    ses.restore();
    sqs.restore();
  });

  it.each(malformed)('answers 400 problem+json naming the field for %s, with no AWS call', async (_, body, headers, field) => {
    const response = await handler(postRegistration(body, headers), lambdaContext());

    expect(response.statusCode).toBe(400);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    const problem = JSON.parse(response.body) as Record<string, unknown>;
    expect(problem).toMatchObject({ status: 400, field, type: 'urn:keyplan:problem:validation-failed' });
    expect(typeof problem.detail).toBe('string');
    expect(response.body).not.toMatch(/at .+\.ts:\d+/);
    expect(apiGateway.calls().length + dynamo.calls().length + ses.calls().length + sqs.calls().length).toBe(0);
  });

  it.each([
    ['missing customerId', without('customerId'), {}, 'customerId', 'customerId is required'],
    ['an empty customerId', with_({ customerId: '' }), {}, 'customerId', 'customerId must not be empty'],
    ['customerId too long', with_({ customerId: 'c'.repeat(65) }), {}, 'customerId', 'customerId must be at most 64 characters'],
    ['customerId with a slash', with_({ customerId: 'a/b' }), {}, 'customerId', 'customerId may contain only letters, digits and . _ : -'],
    ['unknown tier', with_({ tier: 'platinum' }), {}, 'tier', 'tier must be one of: free, pro'],
    ['email with a display name', with_({ email: 'Ada <ada@example.com>' }), {}, 'email', 'email must be one plain email address'],
    ['an extra field', with_({ admin: true }), {}, 'admin', 'unknown field "admin"'],
    ['JSON that is not an object', '[1,2,3]', {}, 'body', 'the body must be a JSON object'],
    [
      'Idempotency-Key with spaces',
      valid,
      { 'Idempotency-Key': 'two words' },
      'Idempotency-Key',
      'Idempotency-Key may contain only letters, digits and . _ : -',
    ],
  ])('says what is wrong with %s in words, naming the field as the caller wrote it', async (_, body, headers, field, detail) => {
    const response = await handler(postRegistration(body, headers), lambdaContext());

    expect(response.statusCode).toBe(400);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(JSON.parse(response.body)).toEqual({
      type: 'urn:keyplan:problem:validation-failed',
      title: 'Invalid request',
      status: 400,
      detail,
      field,
    });
  });

  it('answers 413 problem+json for a body over 8 KiB, with no AWS call', async () => {
    const response = await handler(postRegistration(with_({ name: 'n'.repeat(20_000) })), lambdaContext());

    expect(response.statusCode).toBe(413);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(JSON.parse(response.body)).toMatchObject({ status: 413, type: 'urn:keyplan:problem:payload-too-large' });
    expect(apiGateway.calls().length + dynamo.calls().length + ses.calls().length + sqs.calls().length).toBe(0);
  });

  it('provisions the request every malformed case departs from (201), so each 400 above is that case’s own doing', async () => {
    // The happy path's AWS answers: the key created and put in its plan, the records written, the email sent.
    apiGateway.on(CreateApiKeyCommand).resolves({ id: 'key-1', value: 'Zq3vR8sT1uW4xY7zA0bC2dE5fG9hJ6kL' });
    apiGateway.on(CreateUsagePlanKeyCommand).resolves({ id: 'key-1' });
    apiGateway.on(GetUsagePlanCommand).resolves({ throttle: { rateLimit: 2, burstLimit: 5 } });
    dynamo.on(TransactWriteCommand).resolves({});
    dynamo.on(UpdateCommand).resolves({});
    dynamo.on(QueryCommand).resolves({ Items: [] });
    dynamo.on(GetCommand).resolves({});
    ses.on(SendEmailCommand).resolves({ MessageId: 'm-1' });

    const response = await handler(postRegistration(valid, { 'Idempotency-Key': 'sync-1' }), lambdaContext());

    expect(response.statusCode).toBe(201);
    expect(response.headers).toMatchObject({ 'content-type': 'application/json', location: '/registrations/sync-1' });
    expect(JSON.parse(response.body)).toMatchObject({ registrationId: 'sync-1', customerId: 'cust-1', keyId: 'key-1' });
    expect(apiGateway.commandCalls(CreateApiKeyCommand)).toHaveLength(1);
    expect(ses.commandCalls(SendEmailCommand)).toHaveLength(1);
  });

  it('answers 404 problem+json for a method its resources do not serve, with no AWS call', async () => {
    const response = await handler(apiEvent({ method: 'DELETE', resource: '/registrations/{id}', pathParameters: { id: 'r-1' } }), lambdaContext());

    expect(response.statusCode).toBe(404);
    expect(JSON.parse(response.body)).toEqual({
      type: 'urn:keyplan:problem:not-found',
      title: 'Not found',
      status: 404,
      detail: 'no route DELETE /registrations/{id}',
    });
    expect(apiGateway.calls().length + dynamo.calls().length + ses.calls().length + sqs.calls().length).toBe(0);
  });

  it('accepts Prefer: respond-async with 202, a status URL, and the registration QUEUED', async () => {
    dynamo.on(TransactWriteCommand).resolves({});
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });

    const response = await handler(
      postRegistration(valid, { Prefer: 'wait=5, respond-async', 'Idempotency-Key': 'async-1' }),
      lambdaContext(),
    );

    expect(response.statusCode).toBe(202);
    expect(response.headers).toMatchObject({ location: '/registrations/async-1', 'preference-applied': 'respond-async' });
    expect(JSON.parse(response.body)).toMatchObject({ registrationId: 'async-1', status: 'QUEUED' });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(1);
    expect(apiGateway.calls()).toHaveLength(0);
  });

  it('answers 500 without internals when an AWS client fails unexpectedly', async () => {
    const weird = Object.assign(new Error('arn:aws:dynamodb:secret-internal-detail'), { name: 'Weird' });
    apiGateway.onAnyCommand().rejects(weird);
    dynamo.onAnyCommand().rejects(weird);

    const response = await handler(postRegistration(valid), lambdaContext());

    expect(response.statusCode).toBe(500);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(response.body).not.toContain('secret-internal-detail');
    expect(JSON.parse(response.body)).toMatchObject({ status: 500, title: 'Internal error' });
  });

  it("serves the onboarding write only: the reads of a registration and a customer are customerReads'", async () => {
    const response = await handler(
      apiEvent({ method: 'GET', resource: '/registrations/{id}', pathParameters: { id: 'reg-1' } }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(404);
    expect(dynamo.calls()).toHaveLength(0);
  });
});
