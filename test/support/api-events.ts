import type { APIGatewayProxyEvent, Context } from 'aws-lambda';

export interface ApiEventInput {
  method: string;
  resource: string;
  pathParameters?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | null;
}

/** A REST API (v1) proxy event as API Gateway sends it. */
export function apiEvent(input: ApiEventInput): APIGatewayProxyEvent {
  const path = input.resource.replace(/\{(\w+)\}/g, (_, name: string) => input.pathParameters?.[name] ?? '');
  return {
    httpMethod: input.method,
    resource: input.resource,
    path,
    pathParameters: input.pathParameters ?? null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    headers: { 'content-type': 'application/json', ...input.headers },
    multiValueHeaders: {},
    body: input.body ?? null,
    isBase64Encoded: false,
    stageVariables: null,
    requestContext: {
      requestId: 'request-1',
      httpMethod: input.method,
      path,
      resourcePath: input.resource,
      stage: 'test',
    } as APIGatewayProxyEvent['requestContext'],
  };
}

export const postRegistration = (body: unknown, headers: Record<string, string> = {}) =>
  apiEvent({
    method: 'POST',
    resource: '/registrations',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

export const lambdaContext = (): Context => ({
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'keyplan-test-register',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:keyplan-test-register',
  memoryLimitInMB: '512',
  awsRequestId: 'aws-request-1',
  logGroupName: '/aws/lambda/keyplan-test-register',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 20_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
});

/**
 * The environment of an HTTP function in a unit test (its configuration is read once, when the
 * handler module is first imported): set it before importing the handler.
 */
export function useHandlerEnvironment(extra: Record<string, string> = {}): void {
  Object.assign(process.env, {
    TABLE_NAME: 'keyplan-test',
    TIER_MAP: JSON.stringify({ free: 'plan-free', pro: 'plan-pro' }),
    SENDER_EMAIL: 'keys@example.com',
    AWS_REGION: 'us-east-1',
    POWERTOOLS_LOG_LEVEL: process.env.DEBUG_LOGS ? 'DEBUG' : 'SILENT',
    ...extra,
  });
}
