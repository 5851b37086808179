import { type IncomingHttpHeaders, type OutgoingHttpHeaders, request } from 'node:http';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type HttpGateway, startHttpGateway } from '../../../infra/local/http-gateway';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Echo {
  event: APIGatewayProxyEvent;
  context: { awsRequestId: string; functionName: string; remainingTimeInMillis: number };
}

let gateway: HttpGateway;

/** node:http rather than fetch, to send header names in mixed case and a header twice. */
function send(method: string, path: string, headers: OutgoingHttpHeaders = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${gateway.url}${path}`, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  gateway = await startHttpGateway({ port: 0, serverlessFile: 'test/fixtures/serverless.yml' });
});

afterAll(async () => {
  await gateway.close();
});

describe('startHttpGateway', () => {
  it('hands the handler an API Gateway proxy event and writes its response back', async () => {
    // Act
    const reply = await send(
      'POST',
      '/things/abc-123?x=1&x=2&y=z%20z',
      { 'Content-Type': 'application/json', 'X-Trace': ['one', 'two'] },
      '{"name":"Zoë"}',
    );

    // Assess
    expect(reply.status).toBe(207);
    expect(reply.headers['x-echo']).toBe('yes');
    expect(reply.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const { event, context } = JSON.parse(reply.body) as Echo;
    expect(event).toMatchObject({
      httpMethod: 'POST',
      path: '/things/abc-123',
      resource: '/things/{id}',
      pathParameters: { id: 'abc-123' },
      queryStringParameters: { x: '2', y: 'z z' },
      multiValueQueryStringParameters: { x: ['1', '2'], y: ['z z'] },
      headers: { 'Content-Type': 'application/json', 'X-Trace': 'two' },
      multiValueHeaders: { 'Content-Type': ['application/json'], 'X-Trace': ['one', 'two'] },
      body: '{"name":"Zoë"}',
      isBase64Encoded: false,
      stageVariables: null,
      requestContext: { stage: 'local', resourcePath: '/things/{id}', identity: { sourceIp: '127.0.0.1' } },
    });
    expect(event.requestContext.requestId).toBe(context.awsRequestId);
    expect(reply.headers['x-amzn-requestid']).toBe(context.awsRequestId);
    expect(context.functionName).toContain('echo');
    expect(context.remainingTimeInMillis).toBeGreaterThan(25_000);
  });

  it('passes null query, path parameters and body when a request has none', async () => {
    // Act
    const { event } = JSON.parse((await send('GET', '/things/special')).body) as Echo;

    // Assess: the literal route wins over things/{id}
    expect(event).toMatchObject({
      resource: '/things/special',
      pathParameters: null,
      queryStringParameters: null,
      multiValueQueryStringParameters: null,
      body: null,
    });
  });

  it('decodes path parameters and gives a greedy parameter the rest of the path', async () => {
    // Act
    const { event } = JSON.parse((await send('DELETE', '/files/reports/2024%20q1/sum.csv')).body) as Echo;

    // Assess
    expect(event.resource).toBe('/files/{path+}');
    expect(event.pathParameters).toEqual({ path: 'reports/2024 q1/sum.csv' });
  });

  it('answers 404 problem+json for a path no function serves', async () => {
    // Act
    const reply = await send('GET', '/nowhere');

    // Assess
    expect(reply.status).toBe(404);
    expect(reply.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(reply.body)).toMatchObject({ title: 'Not Found', status: 404 });
  });

  it('answers 405 problem+json with Allow for a method the path does not serve', async () => {
    // Act
    const reply = await send('PUT', '/things/abc-123');

    // Assess
    expect(reply.status).toBe(405);
    expect(reply.headers['content-type']).toBe('application/problem+json');
    expect(reply.headers.allow).toBe('POST, GET');
  });

  it('answers 502 without the error text when the handler throws, and logs the error', async () => {
    // Prepare
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);

    // Act
    const reply = await send('GET', '/boom');

    // Assess
    expect(reply.status).toBe(502);
    expect(reply.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(reply.body)).toEqual({ type: 'about:blank', title: 'Bad Gateway', status: 502 });
    expect(String(logged.mock.calls.flat().join(' '))).toContain('secret internals');
    logged.mockRestore();
  });
});
