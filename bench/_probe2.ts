import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { UpdateCommand, TransactWriteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { bootstrapLocalStack } from '../infra/local/bootstrap';
import { startEmulator } from '../infra/local/emulator';
import { createAwsClients } from '../shared/aws/clients';
import { ensureOneKeyTable } from './bare-registration';
import { benchDir } from './child';
import { figureStack } from './figure-stack';
import { median, round } from './stats';

process.env.PYTHONPATH = [join(benchDir, 'emulator'), process.env.PYTHONPATH].filter(Boolean).join(delimiter);
const N = Number(process.argv[2] ?? 60);
const emulator = await startEmulator({ port: 0 });
await bootstrapLocalStack({ endpoint: emulator.endpoint });
const { config } = await figureStack(emulator.endpoint, 'probe2');
await ensureOneKeyTable('bench-probe2-min');
const T = config.tableName;
const { dynamo } = createAwsClients();
const keyUpdate = (c: string, keyId: string) => ({
  TableName: T,
  Key: { pk: `CUSTOMER#${c}`, sk: `KEY#${keyId}` },
  UpdateExpression:
    'SET customerId = :customerId, keyId = :keyId, #state = if_not_exists(#state, :active), usagePlanId = :plan, tier = :tier, fingerprint = :fp, registrationId = :registrationId, createdAt = if_not_exists(createdAt, :at), rotateAt = if_not_exists(rotateAt, :rotateAt), dueType = if_not_exists(dueType, :due), dueAt = if_not_exists(dueAt, :rotateAt), generation = if_not_exists(generation, :one)',
  ExpressionAttributeNames: { '#state': 'state' },
  ExpressionAttributeValues: { ':customerId': c, ':keyId': keyId, ':active': 'ACTIVE', ':plan': 'p', ':tier': 'basic', ':fp': 'abcd1234', ':registrationId': c, ':at': '2026-01-01T00:00:00Z', ':rotateAt': '2026-04-01T00:00:00Z', ':due': 'ROTATE', ':one': 1 },
});
const keyUpdatePlain = (c: string, keyId: string) => ({
  ...keyUpdate(c, keyId),
  UpdateExpression: 'SET customerId = :customerId, keyId = :keyId, #state = :active, usagePlanId = :plan, tier = :tier, fingerprint = :fp, registrationId = :registrationId, createdAt = :at, rotateAt = :rotateAt, dueType = :due, dueAt = :rotateAt, generation = :one',
});
const keyPut = (c: string, keyId: string) => ({ TableName: T, Item: { pk: `CUSTOMER#${c}`, sk: `KEY#${keyId}`, customerId: c, keyId, state: 'ACTIVE', usagePlanId: 'p', tier: 'basic', fingerprint: 'abcd1234', registrationId: c, createdAt: '2026-01-01T00:00:00Z', rotateAt: '2026-04-01T00:00:00Z', dueType: 'ROTATE', dueAt: '2026-04-01T00:00:00Z', generation: 1 } });
const profileUpdate = (c: string) => ({
  TableName: T,
  Key: { pk: `CUSTOMER#${c}`, sk: 'PROFILE' },
  UpdateExpression: 'SET customerId = :customerId, email = :email, tier = :tier, #status = :active, registrationId = :registrationId, createdAt = if_not_exists(createdAt, :at), updatedAt = :at',
  ConditionExpression: 'attribute_not_exists(pk) OR registrationId = :registrationId',
  ExpressionAttributeNames: { '#status': 'status' },
  ExpressionAttributeValues: { ':customerId': c, ':email': 'x@example.com', ':tier': 'basic', ':active': 'ACTIVE', ':registrationId': c, ':at': '2026-01-01T00:00:00Z' },
});
const regUpdate = (c: string) => ({
  TableName: T,
  Key: { pk: `REG#${c}`, sk: 'REG' },
  UpdateExpression: 'SET #state = :state, keyId = :keyId, keyFingerprint = :fp, leaseExpiresAt = :zero, updatedAt = :at REMOVE expiresAt, dueType, dueAt',
  ExpressionAttributeNames: { '#state': 'state' },
  ExpressionAttributeValues: { ':state': 'ACTIVE', ':keyId': 'k', ':fp': 'f', ':zero': 0, ':at': 'x' },
});
const cases: Record<string, (c: string) => Promise<unknown>> = {
  'UpdateItem REG (5 SET, REMOVE)': (c) => dynamo.send(new UpdateCommand(regUpdate(c))),
  'UpdateItem KEY (12 SET, 6 if_not_exists)': (c) => dynamo.send(new UpdateCommand(keyUpdate(c, 'k1'))),
  'UpdateItem KEY (12 SET, plain)': (c) => dynamo.send(new UpdateCommand(keyUpdatePlain(c, 'k2'))),
  'PutItem KEY (same attributes)': (c) => dynamo.send(new PutCommand(keyPut(c, 'k3'))),
  'UpdateItem PROFILE (7 SET, condition)': (c) => dynamo.send(new UpdateCommand(profileUpdate(c))),
  'TransactWrite 3 updates (keyplan record)': (c) => dynamo.send(new TransactWriteCommand({ TransactItems: [{ Update: regUpdate(`t${c}`) }, { Update: keyUpdate(`t${c}`, 'k4') }, { Update: profileUpdate(`t${c}`) }] })),
  'TransactWrite 1 update (KEY)': (c) => dynamo.send(new TransactWriteCommand({ TransactItems: [{ Update: keyUpdate(`u${c}`, 'k5') }] })),
  'TransactWrite REG upd + KEY put + PROFILE upd': (c) => dynamo.send(new TransactWriteCommand({ TransactItems: [{ Update: regUpdate(`v${c}`) }, { Put: keyPut(`v${c}`, 'k6') }, { Update: profileUpdate(`v${c}`) }] })),
  'UpdateItem one-key table (5 SET, condition)': (c) => dynamo.send(new UpdateCommand({ TableName: 'bench-probe2-min', Key: { pk: `REG#${c}` }, UpdateExpression: 'SET #state = :state, keyId = :keyId, keyFingerprint = :fp, leaseExpiresAt = :zero, updatedAt = :at', ExpressionAttributeNames: { '#state': 'state' }, ExpressionAttributeValues: { ':state': 'ACTIVE', ':keyId': 'k', ':fp': 'f', ':zero': 0, ':at': 'x' } })),
};
const out: Record<string, number[]> = {};
for (let n = 0; n < N + 5; n++) {
  const names = Object.keys(cases);
  for (let i = 0; i < names.length; i++) {
    const name = names[(i + n) % names.length]!;
    const t = performance.now();
    await cases[name]!(`c${n}`);
    if (n >= 5) (out[name] ??= []).push(performance.now() - t);
  }
}
for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(48)} median ${round(median(v), 2)} ms`);
await emulator.stop();
process.exit(0);
