// Temporary (deleted after use): moto's time per write shape of the registration's claim and record.
import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { bootstrapLocalStack } from '../infra/local/bootstrap';
import { startEmulator } from '../infra/local/emulator';
import { createAwsClients } from '../shared/aws/clients';
import { RegistrationTable } from '../shared/aws/registration-table';
import { ensureOneKeyTable } from './bare-registration';
import { benchDir } from './child';
import { figureStack } from './figure-stack';
import { median, round } from './stats';

process.env.PYTHONPATH = [join(benchDir, 'emulator'), process.env.PYTHONPATH].filter(Boolean).join(delimiter);
const N = Number(process.argv[2] ?? 60);
const emulator = await startEmulator({ port: 0 });
await bootstrapLocalStack({ endpoint: emulator.endpoint });
const { config } = await figureStack(emulator.endpoint, 'probe');
const T = config.tableName;
await ensureOneKeyTable('bench-probe-min');
const { dynamo } = createAwsClients();
const table = new RegistrationTable({ client: dynamo, tableName: T, retentionDays: 30 });
const times: Record<string, number[]> = {};
let op = '';
dynamo.middlewareStack.add(
  (next) => async (args) => {
    const t = performance.now();
    try {
      return await next(args);
    } finally {
      (times[op] ??= []).push(performance.now() - t);
    }
  },
  { step: 'initialize', priority: 'high', name: 'probe' },
);
const reg = (id: string) => ({
  registrationId: id, customerId: id, email: `${id}@example.com`, tier: 'basic', payloadHash: 'h'.repeat(64), usagePlanId: 'p',
  state: 'PENDING' as const, attemptId: `a-${id}`, leaseExpiresAt: Date.now() + 60_000, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
});
const profileUpd = (id: string, version: string) => ({
  TableName: T,
  Key: { pk: `CUSTOMER#${id}`, sk: 'PROFILE' },
  UpdateExpression: `SET email = :email, tier = :tier, #status = :active, #keys.#k = :active, updatedAt = :at, ${version}, emailedKeyId = :keyId REMOVE #lease, priorStatus`,
  ConditionExpression: '#lease.#owner = :attemptId',
  ExpressionAttributeNames: { '#status': 'status', '#keys': 'keys', '#k': 'k1', '#version': 'version', '#lease': 'lease', '#owner': 'owner' },
  ExpressionAttributeValues: { ':email': 'x', ':tier': 'basic', ':active': 'ACTIVE', ':at': 'now', ':one': 1, ':attemptId': `a-${id}`, ':keyId': 'k1', ...(version.includes(':zero') ? { ':zero': 0 } : {}) },
});
const run = Math.random().toString(36).slice(2, 8);
for (let n = 0; n < N + 5; n++) {
  const id = `${run}-${n}`;
  const r = reg(id);
  op = 'claim (new shape)'; await table.claim(r, new Date());
  op = 'record (new shape)'; await table.recordKey({ registration: r, keyId: 'k1', fingerprint: 'abcd1234', state: 'ACTIVE', rotateAt: new Date().toISOString(), now: new Date() });
  // profile update alone, two version forms
  const r2 = reg(`v-${id}`);
  op = 'x'; await table.claim(r2, new Date());
  op = 'UpdateItem profile, if_not_exists version'; await dynamo.send(new UpdateCommand(profileUpd(`v-${id}`, '#version = if_not_exists(#version, :zero) + :one')));
  const r3 = reg(`w-${id}`);
  op = 'x'; await table.claim(r3, new Date());
  op = 'UpdateItem profile, plain version'; await dynamo.send(new UpdateCommand(profileUpd(`w-${id}`, '#version = #version + :one')));
  op = 'UpdateItem REG'; await dynamo.send(new UpdateCommand({ TableName: T, Key: { pk: `REG#${id}`, sk: 'REG' }, UpdateExpression: 'SET #state = :state, keyId = :keyId, keyFingerprint = :fp, leaseExpiresAt = :zero, updatedAt = :at REMOVE expiresAt, dueType, dueAt', ExpressionAttributeNames: { '#state': 'state' }, ExpressionAttributeValues: { ':state': 'ACTIVE', ':keyId': 'k', ':fp': 'f', ':zero': 0, ':at': 'x' } }));
  op = 'min PutItem'; await dynamo.send(new PutCommand({ TableName: 'bench-probe-min', Item: { pk: `REG#${id}`, ...r }, ConditionExpression: 'attribute_not_exists(pk)' }));
  op = 'min UpdateItem'; await dynamo.send(new UpdateCommand({ TableName: 'bench-probe-min', Key: { pk: `REG#${id}` }, UpdateExpression: 'SET #state = :state, keyId = :keyId, keyFingerprint = :fp, leaseExpiresAt = :zero, updatedAt = :at', ConditionExpression: 'attemptId = :attemptId', ExpressionAttributeNames: { '#state': 'state' }, ExpressionAttributeValues: { ':state': 'ACTIVE', ':keyId': 'k', ':fp': 'f', ':zero': 0, ':at': 'x', ':attemptId': r.attemptId } }));
  op = 'TransactWrite 1 Put'; await dynamo.send(new TransactWriteCommand({ TransactItems: [{ Put: { TableName: T, Item: { pk: `T#${id}`, sk: 'X', a: 1 }, ConditionExpression: 'attribute_not_exists(pk)' } }] }));
  op = 'PutItem'; await dynamo.send(new PutCommand({ TableName: T, Item: { pk: `P#${id}`, sk: 'X', a: 1 }, ConditionExpression: 'attribute_not_exists(pk)' }));
  if (n === 4) for (const k of Object.keys(times)) times[k] = [];
}
for (const [name, s] of Object.entries(times)) if (name !== 'x') console.log(`${name.padEnd(45)} n=${s.length} median ${round(median(s), 2)} ms`);
await emulator.stop();
process.exit(0);
