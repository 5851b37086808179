import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { apiEvent, lambdaContext, postRegistration, useHandlerEnvironment } from '../support/api-events';

describe('customerReads handler', () => {
  const dynamo = mockClient(DynamoDBDocumentClient);
  let handler: (event: unknown, context: unknown) => Promise<APIGatewayProxyResult>;

  beforeAll(async () => {
    useHandlerEnvironment();
    ({ handler } = (await import('../../functions/customer-reads/handler')) as unknown as { handler: typeof handler });
  });

  beforeEach(() => {
    dynamo.reset();
  });

  afterAll(() => {
    dynamo.restore();
  });

  it('validates path parameters before reading the table', async () => {
    const response = await handler(
      apiEvent({ method: 'GET', resource: '/registrations/{id}', pathParameters: { id: 'bad id!' } }),
      lambdaContext(),
    );
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ field: 'id' });
    expect(dynamo.calls()).toHaveLength(0);
  });

  it('answers 500 without internals when an AWS client fails unexpectedly', async () => {
    dynamo.onAnyCommand().rejects(Object.assign(new Error('arn:aws:dynamodb:secret-internal-detail'), { name: 'Weird' }));

    const response = await handler(
      apiEvent({ method: 'GET', resource: '/customers/{customerId}', pathParameters: { customerId: 'cust-1' } }),
      lambdaContext(),
    );

    expect(response.statusCode).toBe(500);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(dynamo.calls()).toHaveLength(1);
    expect(response.body).not.toContain('secret-internal-detail');
    expect(JSON.parse(response.body)).toMatchObject({ status: 500, title: 'Internal error' });
  });

  it('serves no write: POST /registrations is register\'s', async () => {
    const response = await handler(postRegistration({ customerId: 'cust-1', email: 'ada@example.com', tier: 'free' }), lambdaContext());
    expect(response.statusCode).toBe(404);
    expect(dynamo.calls()).toHaveLength(0);
  });
});
