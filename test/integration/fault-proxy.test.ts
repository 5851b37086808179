import {
  CreateApiKeyCommand,
  GetApiKeyCommand,
  GetApiKeysCommand,
  TooManyRequestsException,
} from '@aws-sdk/client-api-gateway';
import {
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  ThrottlingException,
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { SendEmailCommand } from '@aws-sdk/client-ses';
import { CreateQueueCommand, ReceiveMessageCommand, RequestThrottled, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack } from '../../infra/local/bootstrap';
import { ApiKeyGateway } from '../../shared/aws/api-key-gateway';
import { clientsAt, type TestClients } from '../support/aws-test-clients';
import { keysNamed, sentEmailsTo } from '../support/emulator-probe';
import { type AwsCall, type Fault, type FaultProxy, type FaultRule, recognize, startFaultProxy } from '../support/fault-proxy';

const emulator = inject('localStack').endpoint;
let proxy: FaultProxy;
let tableName: string;
let sender: string;
let queueUrl: string;
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;

/** Clients through the proxy: with the SDK's retries, or with a single attempt to see the raw answer. */
const viaProxy = (maxAttempts?: number): TestClients => clientsAt(proxy.endpoint, { maxAttempts });
const direct = () => clientsAt(emulator);

beforeAll(async () => {
  tableName = unique('keyplan-fault-proxy');
  ({ sender } = await bootstrapLocalStack({ endpoint: emulator, tableName }));
  proxy = await startFaultProxy({ target: emulator, seed: 42 });
  // Created through the proxy, the queue's URL names the proxy, so SQS calls on it go through it.
  ({ QueueUrl: queueUrl = '' } = await viaProxy().sqs.send(new CreateQueueCommand({ QueueName: unique('fault-proxy') })));
});

afterAll(async () => {
  await proxy.stop();
});

/** One cheap, harmless call per service, as a given client makes it. */
const calls: Record<string, (c: TestClients) => Promise<{ $metadata: { attempts?: number } }>> = {
  apigateway: (c) => c.apiGateway.send(new GetApiKeysCommand({ limit: 1 })),
  dynamodb: (c) => c.dynamoDb.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'none' }, sk: { S: 'none' } } })),
  ses: (c) =>
    c.ses.send(
      new SendEmailCommand({
        Source: sender,
        Destination: { ToAddresses: [`${unique('proxy')}@example.com`] },
        Message: { Subject: { Data: 'proxy test' }, Body: { Text: { Data: 'hello' } } },
      }),
    ),
  sqs: (c) => c.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'proxy test' })),
};
const services = Object.keys(calls);
const once = (service: string, fault: Fault): FaultRule => ({ name: unique(`${fault.kind}-${service}`), service, firstCalls: 1, fault });
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error as Error & { code?: string; $fault?: string; $metadata: { httpStatusCode?: number } },
  );

describe('recognising the operation of a request', () => {
  const request = (method: string, url: string, headers: Record<string, string> = {}, body = '') =>
    recognize({ method, url, headers }, Buffer.from(body));
  const scope = (service: string) => ({
    authorization: `AWS4-HMAC-SHA256 Credential=test/20310101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=abc`,
  });

  it.each([
    ['POST', '/apikeys', 'CreateApiKey'],
    ['GET', '/apikeys?includeValues=true&name=x', 'GetApiKeys'],
    ['GET', '/apikeys/k1?includeValue=true', 'GetApiKey'],
    ['PATCH', '/apikeys/k1', 'UpdateApiKey'],
    ['DELETE', '/apikeys/k1', 'DeleteApiKey'],
    ['POST', '/usageplans/p1/keys', 'CreateUsagePlanKey'],
    ['GET', '/usageplans/p1/keys', 'GetUsagePlanKeys'],
    ['GET', '/usageplans/p1/keys/k1', 'GetUsagePlanKey'],
    ['DELETE', '/usageplans/p1/keys/k1', 'DeleteUsagePlanKey'],
    ['GET', '/usageplans/p1', 'GetUsagePlan'],
    ['GET', '/usageplans?keyId=k1', 'GetUsagePlans'],
    ['GET', '/usageplans/p1/usage?startDate=2031-01-01', 'GetUsage'],
  ])('API Gateway %s %s is %s', (method, url, operation) => {
    expect(request(method, url, scope('apigateway'))).toMatchObject({ service: 'apigateway', operation });
  });

  it('reads JSON-protocol operations from X-Amz-Target and query-protocol ones from the form body', () => {
    expect(request('POST', '/', { ...scope('dynamodb'), 'x-amz-target': 'DynamoDB_20120810.TransactWriteItems' })).toMatchObject({
      service: 'dynamodb',
      operation: 'TransactWriteItems',
    });
    expect(request('POST', '/', { ...scope('sqs'), 'x-amz-target': 'AmazonSQS.SendMessage' })).toMatchObject({
      service: 'sqs',
      operation: 'SendMessage',
    });
    expect(
      request('POST', '/', { ...scope('ses'), 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, 'Action=SendEmail&Version=2010-12-01'),
    ).toMatchObject({ service: 'ses', operation: 'SendEmail' });
    expect(request('POST', '/', { 'x-amz-target': 'DynamoDB_20120810.GetItem', 'amz-sdk-request': 'attempt=3; max=3' })).toMatchObject({
      service: 'dynamodb',
      operation: 'GetItem',
      attempt: 3,
    });
  });
});

describe('the fault proxy', () => {
  it('forwards requests unchanged and counts them per operation', async () => {
    proxy.setRules([]);
    const before = proxy.stats();
    const name = unique('forwarded');

    const created = await viaProxy().apiGateway.send(
      new CreateApiKeyCommand({ name, enabled: true, customerId: 'cust-proxy', tags: { 'keyplan:managed': 'true' } }),
    );
    await viaProxy().dynamoDb.send(
      new PutItemCommand({ TableName: tableName, Item: { pk: { S: name }, sk: { S: 'ITEM' }, note: { S: 'héllo ✓' } } }),
    );
    await viaProxy().sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: name }));
    const to = `${name}@example.com`;
    await viaProxy().ses.send(
      new SendEmailCommand({ Source: sender, Destination: { ToAddresses: [to] }, Message: { Subject: { Data: name }, Body: { Text: { Data: 'b' } } } }),
    );

    const key = await direct().apiGateway.send(new GetApiKeyCommand({ apiKey: String(created.id) }));
    expect(key).toMatchObject({ name, enabled: true, customerId: 'cust-proxy', tags: { 'keyplan:managed': 'true' } });
    const item = await direct().dynamoDb.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: name }, sk: { S: 'ITEM' } } }));
    expect(item.Item?.note).toEqual({ S: 'héllo ✓' });
    const received = await viaProxy().sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    expect(received.Messages?.map((m) => m.Body)).toContain(name);
    expect(await sentEmailsTo(emulator, to)).toEqual([expect.objectContaining({ subject: name })]);
    const after = proxy.stats();
    const delta = (operation: string) => (after.calls[operation] ?? 0) - (before.calls[operation] ?? 0);
    expect(delta('apigateway.CreateApiKey')).toBe(1);
    expect(delta('dynamodb.PutItem')).toBe(1);
    expect(delta('sqs.SendMessage')).toBe(1);
    expect(delta('sqs.ReceiveMessage')).toBe(1);
    expect(delta('ses.SendEmail')).toBe(1);
    expect(after.faults).toEqual(before.faults);
  });

  describe('throttle', () => {
    it.each(services)('is retried by the SDK, which succeeds on its second attempt (%s)', async (service) => {
      const rule = once(service, { kind: 'throttle' });
      proxy.setRules([rule]);

      const output = await calls[service]?.(viaProxy());

      expect(output?.$metadata.attempts).toBe(2);
      expect(proxy.stats().faultsByRule[String(rule.name)]).toBe(1);
    });

    it('reaches the SDK as each service\'s own throttling error', async () => {
      proxy.setRules([{ fault: { kind: 'throttle' } }]);
      const client = viaProxy(1);

      const [apiGateway, dynamodb, ses, sqs] = await Promise.all(services.map((service) => failure(calls[service]!(client))));

      expect(apiGateway).toBeInstanceOf(TooManyRequestsException);
      expect(apiGateway?.$metadata.httpStatusCode).toBe(429);
      expect(dynamodb).toBeInstanceOf(ThrottlingException);
      expect(ses).toMatchObject({ name: 'Throttling', $fault: 'client' });
      expect(sqs).toBeInstanceOf(RequestThrottled);
    });
  });

  describe('error500', () => {
    it.each(services)('answers a 5xx the SDK retries (%s)', async (service) => {
      proxy.setRules([once(service, { kind: 'error500' })]);

      const output = await calls[service]?.(viaProxy());

      expect(output?.$metadata.attempts).toBe(2);
    });

    it('is a server fault with the chosen status', async () => {
      proxy.setRules([{ service: 'dynamodb', fault: { kind: 'error500' } }, { service: 'apigateway', fault: { kind: 'error500', status: 503 } }]);

      const dynamodb = await failure(calls.dynamodb!(viaProxy(1)));
      const apiGateway = await failure(calls.apigateway!(viaProxy(1)));

      expect(dynamodb).toMatchObject({ name: 'InternalServerError', $fault: 'server', $metadata: { httpStatusCode: 500 } });
      expect(apiGateway).toMatchObject({ name: 'ServiceUnavailableException', $fault: 'server', $metadata: { httpStatusCode: 503 } });
    });
  });

  describe('reset', () => {
    it('before forwarding: the caller sees a dropped connection and the call never happened', async () => {
      proxy.setRules([{ operation: 'CreateApiKey', fault: { kind: 'reset-before' } }]);
      const name = unique('reset-before');

      const error = await failure(viaProxy(1).apiGateway.send(new CreateApiKeyCommand({ name, enabled: true })));

      expect(error.code).toBe('ECONNRESET');
      expect(await keysNamed(direct().apiGateway, name)).toEqual([]);
    });

    it('after forwarding: CreateApiKey leaves a key in the emulator that the caller never got', async () => {
      proxy.setRules([{ operation: 'CreateApiKey', fault: { kind: 'reset-after' } }]);
      const name = unique('reset-after');

      const error = await failure(viaProxy(1).apiGateway.send(new CreateApiKeyCommand({ name, enabled: true })));

      expect(error.code).toBe('ECONNRESET');
      expect(await keysNamed(direct().apiGateway, name)).toHaveLength(1);
    });

    it('after forwarding: keyplan finds the key a lost CreateApiKey made instead of making a second one', async () => {
      proxy.setRules([{ operation: 'CreateApiKey', firstCalls: 1, fault: { kind: 'reset-after' } }]);
      const name = unique('reset-after-saga');
      const client = viaProxy();
      const keys = new ApiKeyGateway({ client: client.apiGateway, singleAttemptClient: viaProxy(1).apiGateway, backoffBaseMs: 1 });

      const issued = await keys.ensureKey({ name, customerId: 'cust-proxy', description: 'proxy test', tags: {} }, { lookupFirst: false });

      const inEmulator = await keysNamed(direct().apiGateway, name);
      expect(inEmulator.map((key) => key.id)).toEqual([issued.id]);
    });

    it('after forwarding: a retried TransactWriteItems is answered as DynamoDB answers a repeated ClientRequestToken', async () => {
      proxy.setRules([{ operation: 'TransactWriteItems', firstCalls: 1, fault: { kind: 'reset-after' } }]);
      const replayedBefore = proxy.stats().replayedTransactions;
      const pk = unique('txn');
      const putOnce = new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: tableName, Item: { pk: { S: pk }, sk: { S: 'ITEM' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
        ],
      });

      const output = await viaProxy().dynamoDb.send(putOnce);

      expect(output.$metadata.attempts).toBe(2);
      expect(proxy.stats().replayedTransactions).toBe(replayedBefore + 1);
      const item = await direct().dynamoDb.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: pk }, sk: { S: 'ITEM' } } }));
      expect(item.Item?.pk).toEqual({ S: pk });
    });

    it('after forwarding, without the token memory: the retry meets its own write, as moto alone answers', async () => {
      const plain = await startFaultProxy({ target: emulator, transactionTokens: false });
      try {
        plain.setRules([{ operation: 'TransactWriteItems', firstCalls: 1, fault: { kind: 'reset-after' } }]);
        const pk = unique('txn-plain');

        const error = await failure(
          clientsAt(plain.endpoint).dynamoDb.send(
            new TransactWriteItemsCommand({
              TransactItems: [
                { Put: { TableName: tableName, Item: { pk: { S: pk }, sk: { S: 'ITEM' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
              ],
            }),
          ),
        );

        expect(error).toBeInstanceOf(TransactionCanceledException);
      } finally {
        await plain.stop();
      }
    });
  });

  describe('delay', () => {
    it('holds the chosen calls back by the given time, and only those', async () => {
      proxy.setRules([{ operation: 'GetItem', fault: { kind: 'delay', ms: 400 } }]);
      const client = viaProxy();
      const timed = async (call: () => Promise<unknown>) => {
        const start = performance.now();
        await call();
        return performance.now() - start;
      };

      const delayed = await timed(() => calls.dynamodb!(client));
      const other = await timed(() => client.dynamoDb.send(new DescribeTableCommand({ TableName: tableName })));

      expect(delayed).toBeGreaterThanOrEqual(400);
      expect(other).toBeLessThan(400);
      expect(proxy.stats().faultsByOperation['dynamodb.GetItem']?.delay).toBeGreaterThanOrEqual(1);
    });
  });

  describe('choosing the calls', () => {
    /** Which of `n` sequential GetItem calls fail under a throttle rule of `share`. */
    async function hitSet(target: FaultProxy, share: number, n = 40): Promise<number[]> {
      target.setRules([{ operation: 'GetItem', share, fault: { kind: 'throttle' } }]);
      const client = clientsAt(target.endpoint, { maxAttempts: 1 });
      const hits: number[] = [];
      for (let i = 0; i < n; i++) {
        await calls.dynamodb!(client).catch(() => hits.push(i));
      }
      return hits;
    }

    it('hits a share of the calls, the same ones for the same seed', async () => {
      const first = await hitSet(proxy, 0.5);
      const again = await hitSet(proxy, 0.5);
      const sameSeed = await startFaultProxy({ target: emulator, seed: 42 });
      const otherSeed = await startFaultProxy({ target: emulator, seed: 7 });
      try {
        expect(first.length).toBeGreaterThan(8);
        expect(first.length).toBeLessThan(32);
        expect(again).toEqual(first);
        expect(await hitSet(sameSeed, 0.5)).toEqual(first);
        expect(await hitSet(otherSeed, 0.5)).not.toEqual(first);
      } finally {
        await Promise.all([sameSeed.stop(), otherSeed.stop()]);
      }
    });

    it('hits the first N matching calls, or the calls within a time window', async () => {
      const client = viaProxy(1);
      proxy.setRules([{ operation: 'GetItem', firstCalls: 2, fault: { kind: 'error500' } }]);
      const firstN = await Promise.allSettled([0, 1, 2, 3].map(() => calls.dynamodb!(client)));
      expect(firstN.filter((outcome) => outcome.status === 'rejected')).toHaveLength(2);

      proxy.setRules([{ operation: 'GetItem', window: { until: Date.now() + 500 }, fault: { kind: 'error500' } }]);
      await expect(calls.dynamodb!(client)).rejects.toMatchObject({ $metadata: { httpStatusCode: 500 } });
      await new Promise((resolve) => setTimeout(resolve, 600));
      await expect(calls.dynamodb!(client)).resolves.toBeDefined();
    });

    it('matches by predicate over the call', async () => {
      const seen: AwsCall[] = [];
      proxy.setRules([
        {
          operation: (call) => {
            seen.push(call);
            return call.service === 'apigateway' && call.method === 'GET';
          },
          fault: { kind: 'error500' },
        },
      ]);

      await expect(calls.apigateway!(viaProxy(1))).rejects.toMatchObject({ $metadata: { httpStatusCode: 500 } });
      await expect(calls.dynamodb!(viaProxy(1))).resolves.toBeDefined();
      expect(seen.map((call) => call.operation)).toEqual(['GetApiKeys', 'GetItem']);
    });
  });
});

