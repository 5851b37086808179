// Temporary investigation (not part of the bench): where POST /registrations spends its time.
import { randomUUID } from 'node:crypto';
import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PutCommand, UpdateCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { bootstrapLocalStack } from '../infra/local/bootstrap';
import { startEmulator } from '../infra/local/emulator';
import { startHttpGateway } from '../infra/local/http-gateway';
import { createAwsClients } from '../shared/aws/clients';
import { createEnqueueDeps } from '../shared/provisioning/compose';
import { provisionKey } from '../shared/provisioning/provision-key';
import { BareRegistration, ensureOneKeyTable, MinimalRegistration } from './bare-registration';
import { benchDir } from './child';
import { figureStack } from './figure-stack';
import { median, percentile, round } from './stats';
import { Agent, request } from 'node:http';

process.env.PYTHONPATH = [join(benchDir, 'emulator'), process.env.PYTHONPATH].filter(Boolean).join(delimiter);
const N = Number(process.argv[2] ?? 60);
const emulator = await startEmulator({ port: 0 });
await bootstrapLocalStack({ endpoint: emulator.endpoint });
const { stack, config } = await figureStack(emulator.endpoint, 'probe');
const usagePlanId = stack.usagePlans.basic!;
await ensureOneKeyTable('bench-probe-min');

const times: Record<string, Record<string, number[]>> = {};
let current = 'none';
let seen: Record<string, number> = {};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const tap = (client: { middlewareStack: any }) =>
  client.middlewareStack.add(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (next: any, context: any) => async (args: any) => {
      const t = performance.now();
      try {
        return await next(args);
      } finally {
        const base = String(context.commandName).replace(/Command$/, '');
        seen[base] = (seen[base] ?? 0) + 1;
        const op = `${base}#${seen[base]}`;
        ((times[current] ??= {})[op] ??= []).push(performance.now() - t);
      }
    },
    { step: 'initialize', priority: 'high', name: 'probeTimer' },
  );

const clients = createAwsClients();
for (const c of [clients.apiGateway, clients.apiGatewaySingleAttempt, clients.dynamo, clients.ses, clients.sqs]) tap(c);
const deps = createEnqueueDeps(config, clients);
const bare = new BareRegistration({ tableName: config.tableName, usagePlanId, sender: config.senderEmail, keyNamePrefix: 'probe-bare' });
const min = new MinimalRegistration({ tableName: 'bench-probe-min', usagePlanId, sender: config.senderEmail, keyNamePrefix: 'probe-min' });
for (const c of [...bare.clients, ...min.clients]) tap(c);
const raw = createAwsClients();
tap(raw.dynamo);
const gateway = await startHttpGateway({ port: 0 });
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const post = (body: unknown) =>
  new Promise<number>((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(`${gateway.url}/registrations`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(payload);
  });

const run = randomUUID().slice(0, 6);
const totals: Record<string, number[]> = {};
const paths: Record<string, (n: number) => Promise<unknown>> = {
  http: async (n) => {
    const id = `h-${run}-${n}`;
    const s = await post({ customerId: id, email: `${id}@example.com`, tier: 'basic' });
    if (s !== 201) throw new Error(String(s));
  },
  inproc: (n) => {
    const id = `i-${run}-${n}`;
    return provisionKey({ registrationId: id, request: { customerId: id, email: `${id}@example.com`, tier: 'basic' }, now: new Date() }, deps);
  },
  bare: (n) => bare.register(`b-${run}-${n}`, 'basic'),
  min: (n) => min.register(`m-${run}-${n}`, 'basic'),
  // Isolated DynamoDB writes: the same claim item as a PutItem on keyplan's table (sk + due index) and as a 1-item transaction.
  ddb: async (n) => {
    const now = new Date();
    const item = { registrationId: `d-${n}`, customerId: `d-${n}`, email: 'x@example.com', tier: 'basic', state: 'PENDING', attemptId: 'a', leaseExpiresAt: 1, createdAt: now.toISOString() };
    const due = { dueType: 'RESUME', dueAt: now.toISOString() };
    current = 'ddb';
    await raw.dynamo.send(new PutCommand({ TableName: config.tableName, Item: { pk: `REG#p-${run}-${n}`, sk: 'REG', ...item, ...due }, ConditionExpression: 'attribute_not_exists(pk)' }));
    await raw.dynamo.send(new PutCommand({ TableName: config.tableName, Item: { pk: `REG#q-${run}-${n}`, sk: 'REG', ...item }, ConditionExpression: 'attribute_not_exists(pk)' }));
    await raw.dynamo.send(new PutCommand({ TableName: 'bench-probe-min', Item: { pk: `REG#p-${run}-${n}`, ...item }, ConditionExpression: 'attribute_not_exists(pk)' }));
    seen = {};
    current = 'ddb-tx1';
    await raw.dynamo.send(new TransactWriteCommand({ TransactItems: [{ Put: { TableName: config.tableName, Item: { pk: `REG#t-${run}-${n}`, sk: 'REG', ...item, ...due }, ConditionExpression: 'attribute_not_exists(pk)' } }] }));
    current = 'ddb-tx2';
    await raw.dynamo.send(new TransactWriteCommand({ TransactItems: [
      { Put: { TableName: config.tableName, Item: { pk: `REG#u-${run}-${n}`, sk: 'REG', ...item, ...due }, ConditionExpression: 'attribute_not_exists(pk)' } },
      { ConditionCheck: { TableName: config.tableName, Key: { pk: `CUSTOMER#u-${n}`, sk: 'PROFILE' }, ConditionExpression: 'attribute_not_exists(pk)' } },
    ] }));
    current = 'ddb-upd';
    await raw.dynamo.send(new UpdateCommand({ TableName: config.tableName, Key: { pk: `REG#p-${run}-${n}`, sk: 'REG' }, UpdateExpression: 'SET #s = :s REMOVE dueType, dueAt', ConditionExpression: 'attemptId = :a', ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': 'ACTIVE', ':a': 'a' } }));
  },
};
for (let n = 0; n < N + 10; n++) {
  const order = Object.keys(paths);
  for (let i = 0; i < order.length; i++) {
    const name = order[(i + n) % order.length]!;
    current = name;
    seen = {};
    const t = performance.now();
    await paths[name]!(n);
    if (n >= 10) (totals[name] ??= []).push(performance.now() - t);
    else for (const op of Object.values(times[name] ?? {})) op.length = 0;
  }
  if (n === 9) for (const k of Object.keys(times)) times[k] = {};
}
for (const [name, samples] of Object.entries(totals)) {
  console.log(`${name.padEnd(8)} total median ${round(median(samples), 2)} p95 ${round(percentile(samples, 95), 2)}`);
  for (const [op, s] of Object.entries(times[name] ?? {})) console.log(`   ${op.padEnd(22)} n=${String(s.length).padStart(4)} median ${round(median(s), 2)} p95 ${round(percentile(s, 95), 2)}`);
}
for (const k of ['ddb', 'ddb-tx1', 'ddb-tx2', 'ddb-upd']) for (const [op, s] of Object.entries(times[k] ?? {})) console.log(`${k} ${op} n=${s.length} median ${round(median(s), 2)}`);
agent.destroy();
await gateway.close();
await emulator.stop();
process.exit(0);
