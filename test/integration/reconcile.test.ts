import {
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { createAwsClients } from '../../shared/aws/clients';
import { createHash } from 'node:crypto';
import { DUE, keyItemKey } from '../../shared/aws/table-keys';
import { type Config, loadConfig } from '../../shared/config';
import { createProvisioningDeps, createReconcileDeps } from '../../shared/wiring/compose';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';
import { itemsOfCustomer, plansOfKey, wholeTable } from '../support/emulator-probe';

// The reconciler judges every key of its prefix and every tracked item of its table, so each test
// has both to itself: keys and records of tests running beside it are neither seen nor touched.
let stack: LocalStack;
let config: Config;
let runId = 0;
const unique = (label: string) => `${label}${process.pid}x${Date.now().toString(36)}x${++runId}`;
const aws = createAwsClients();
/** Later than any safety age: every seeded key counts as old. */
const later = () => new Date(Date.now() + 3 * 3_600_000);

beforeEach(async () => {
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-reconcile-') });
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig({ ...functionEnvironment(stack), KEY_NAME_PREFIX: unique('rec') });
});

async function register(tier: string) {
  const customerId = unique('cust');
  const request = { customerId, email: `${customerId}@example.com`, tier };
  const { registration } = await provisionKey(
    { registrationId: customerId, request, now: new Date() },
    createProvisioningDeps(config),
  );
  return { customerId, keyId: String(registration.keyId) };
}

/** A key keyplan would have made (name and tags) with no record: what a crash or failed rollback leaves. */
async function strayKey(label: string, tags: Record<string, string> = { 'keyplan:managed': 'true' }) {
  const key = await aws.apiGateway.send(
    // Named as keyplan names its keys: the reconciler judges no other name.
    new CreateApiKeyCommand({ name: `${config.keyNamePrefix}-${createHash('sha256').update(unique(label)).digest('hex').slice(0, 32)}`, enabled: true, tags }),
  );
  return String(key.id);
}

const move = async (keyId: string, from: string | undefined, to: string | undefined) => {
  if (from) await aws.apiGateway.send(new DeleteUsagePlanKeyCommand({ usagePlanId: from, keyId }));
  if (to) await aws.apiGateway.send(new CreateUsagePlanKeyCommand({ usagePlanId: to, keyId, keyType: 'API_KEY' }));
};

/** What the reconciler could change: the prefix's keys with their plans, and the whole table. */
async function snapshot() {
  const page = await aws.apiGateway.send(new GetApiKeysCommand({ nameQuery: config.keyNamePrefix, limit: 500 }));
  const keys = await Promise.all(
    (page.items ?? []).map(async (key) => ({
      id: key.id,
      enabled: key.enabled,
      plans: (await plansOfKey(aws.apiGateway, String(key.id))).sort(),
    })),
  );
  const items = (await wholeTable(aws.dynamo, config.tableName)).map(({ updatedAt: _ignored, ...item }) => item);
  const byId = (a: { id?: string }, b: { id?: string }) => String(a.id).localeCompare(String(b.id));
  const byKey = (a: Record<string, unknown>, b: Record<string, unknown>) =>
    `${String(a.pk)}${String(a.sk)}`.localeCompare(`${String(b.pk)}${String(b.sk)}`);
  return { keys: keys.sort(byId), items: items.sort(byKey) };
}

const keyItem = async (customerId: string, keyId: string) =>
  (await itemsOfCustomer(aws.dynamo, config.tableName, customerId)).find((item) => item.keyId === keyId);

/** One of each kind of drift the reconciler repairs, plus things it must leave alone. */
async function seedDrift() {
  const { free, basic, pro } = stack.usagePlans as Record<'free' | 'basic' | 'pro', string>;
  const healthy = await register('basic');
  const inNoPlan = await register('basic');
  await move(inNoPlan.keyId, basic, undefined);
  const inWrongPlan = await register('basic');
  await move(inWrongPlan.keyId, basic, pro);
  const inTwoPlans = await register('free');
  await move(inTwoPlans.keyId, undefined, basic);
  const markedForRepair = await register('free');
  // What a tier change of an earlier version left when it could not put a key back: the mark, in
  // the cleanup partition. The reconciler repairs it and puts the key back into its job's partition.
  await aws.dynamo.send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keyItemKey(markedForRepair.customerId, markedForRepair.keyId),
      UpdateExpression: 'SET needsRepair = :repair, dueType = :cleanup, dueAt = :at',
      ExpressionAttributeValues: {
        ':repair': { usagePlanId: free, since: new Date().toISOString() },
        ':cleanup': DUE.cleanup,
        ':at': new Date().toISOString(),
      },
    }),
  );
  const keyGone = await register('pro');
  await aws.apiGateway.send(new DeleteApiKeyCommand({ apiKey: keyGone.keyId }));

  const noRecord = await strayKey('stray-in-plan');
  await move(noRecord, undefined, basic);
  const noRecordNoPlan = await strayKey('stray');
  // A failed rollback leaves its key recorded as ORPHANED, in the cleanup partition.
  const orphanCustomer = unique('orphan');
  const recordedOrphan = await strayKey('orphaned');
  await aws.dynamo.send(
    new PutCommand({
      TableName: config.tableName,
      Item: {
        ...keyItemKey(orphanCustomer, recordedOrphan),
        customerId: orphanCustomer,
        keyId: recordedOrphan,
        state: 'ORPHANED',
        usagePlanId: basic,
        tier: 'basic',
        registrationId: orphanCustomer,
        createdAt: new Date().toISOString(),
        dueType: DUE.cleanup,
        dueAt: new Date().toISOString(),
      },
    }),
  );
  // Not keyplan's: no managed tag, though the name matches.
  const foreign = await strayKey('foreign', { team: 'other' });

  return { healthy, inNoPlan, inWrongPlan, inTwoPlans, markedForRepair, keyGone, noRecord, noRecordNoPlan, recordedOrphan, orphanCustomer, foreign };
}

describe('reconcile', () => {
  it('in a dry run lists every drift and changes nothing', async () => {
    const seeded = await seedDrift();
    const before = await snapshot();

    const report = await reconcileKeys({ now: later(), dryRun: true }, createReconcileDeps(config));

    expect(await snapshot()).toEqual(before);
    expect(report.found).toEqual({ 'delete-orphan': 3, 'repair-plan': 4, 'mark-missing': 1, 'close-orphan-record': 0 });
    expect(report.done).toEqual({ 'delete-orphan': 0, 'repair-plan': 0, 'mark-missing': 0, 'close-orphan-record': 0 });
    expect(report.actions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'delete-orphan', keyId: seeded.noRecord, reason: 'no-record' }),
        expect.objectContaining({ kind: 'delete-orphan', keyId: seeded.noRecordNoPlan, reason: 'no-record' }),
        expect.objectContaining({ kind: 'delete-orphan', keyId: seeded.recordedOrphan, reason: 'orphan-record' }),
        expect.objectContaining({ kind: 'repair-plan', keyId: seeded.inNoPlan.keyId, fromPlans: [] }),
        expect.objectContaining({ kind: 'repair-plan', keyId: seeded.inWrongPlan.keyId, toPlan: stack.usagePlans.basic }),
        expect.objectContaining({ kind: 'repair-plan', keyId: seeded.inTwoPlans.keyId, toPlan: stack.usagePlans.free }),
        expect.objectContaining({ kind: 'repair-plan', keyId: seeded.markedForRepair.keyId }),
        expect.objectContaining({ kind: 'mark-missing', keyId: seeded.keyGone.keyId }),
      ]),
    );
    expect(report.actions.map((action) => action.keyId)).not.toContain(seeded.healthy.keyId);
    expect(report.actions.map((action) => action.keyId)).not.toContain(seeded.foreign);
  });

  it('deletes orphans, puts keys into the plan of their tier, marks records whose key is gone; a second run finds nothing', async () => {
    const seeded = await seedDrift();
    const { free, basic } = stack.usagePlans as Record<'free' | 'basic', string>;

    const report = await reconcileKeys({ now: later(), dryRun: false }, createReconcileDeps(config));

    expect(report).toMatchObject({ failures: 0, busy: 0 });
    expect(report.done).toEqual(report.found);
    const remaining = (await snapshot()).keys.map((key) => key.id);
    for (const orphan of [seeded.noRecord, seeded.noRecordNoPlan, seeded.recordedOrphan]) {
      expect(remaining).not.toContain(orphan);
    }
    expect(remaining).toContain(seeded.foreign);
    expect(await plansOfKey(aws.apiGateway, seeded.healthy.keyId)).toEqual([basic]);
    expect(await plansOfKey(aws.apiGateway, seeded.inNoPlan.keyId)).toEqual([basic]);
    expect(await plansOfKey(aws.apiGateway, seeded.inWrongPlan.keyId)).toEqual([basic]);
    expect(await plansOfKey(aws.apiGateway, seeded.inTwoPlans.keyId)).toEqual([free]);
    expect(await plansOfKey(aws.apiGateway, seeded.markedForRepair.keyId)).toEqual([free]);
    const repaired = await keyItem(seeded.markedForRepair.customerId, seeded.markedForRepair.keyId);
    expect(repaired).not.toHaveProperty('needsRepair');
    expect(repaired).toMatchObject({ state: 'ACTIVE', dueType: DUE.rotate, dueAt: repaired?.rotateAt });
    expect(await keyItem(seeded.keyGone.customerId, seeded.keyGone.keyId)).toMatchObject({ state: 'MISSING' });
    expect(await keyItem(seeded.keyGone.customerId, seeded.keyGone.keyId)).not.toHaveProperty('dueType');
    expect(await keyItem(seeded.orphanCustomer, seeded.recordedOrphan)).toMatchObject({ state: 'DELETED' });

    const again = await reconcileKeys({ now: later(), dryRun: false }, createReconcileDeps(config));
    expect(again.actions).toEqual([]);
    expect(again.managedKeys).toBe(report.managedKeys - 3);
  });

  it('leaves keys younger than the safety age alone: a registration may still be recording them', async () => {
    const young = await strayKey('young');

    const report = await reconcileKeys({ now: new Date(), dryRun: false }, createReconcileDeps(config));

    expect(report.actions).toEqual([]);
    expect(report.skippedTooYoung).toBe(1);
    expect((await snapshot()).keys.map((key) => key.id)).toContain(young);
  });

  it('reports the key count of the account against the 10,000-key ceiling', async () => {
    await register('free');

    const report = await reconcileKeys({ now: later(), dryRun: true }, createReconcileDeps(config));

    // Other tests' keys share the emulator's account, so only bounds are certain here; the
    // arithmetic and the 80% warning are unit-tested.
    expect(report.accountKeys).toBeGreaterThanOrEqual(report.managedKeys);
    expect(report.managedKeys).toBe(1);
    expect(report).toMatchObject({ keyCeiling: 10_000, nearCeiling: false });
  });
});
