// Figure 5's seeding, timed apart from the measured runs: `keys` customers with one managed key
// each, as registrations would have left them (a key named and tagged by keyplan in its tier's
// plan, the key item due for rotation, the customer's profile), but written straight to the
// emulator, with plain clients, many at a time.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CreateApiKeyCommand, CreateUsagePlanKeyCommand } from '@aws-sdk/client-api-gateway';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { keyNameFor } from '../shared/core/registration';
import { clientsAt } from '../test/support/aws-test-clients';
import { childMain, progress } from './child';

export interface SeedInput {
  endpoint: string;
  tableName: string;
  keyNamePrefix: string;
  usagePlans: Record<string, string>;
  keys: number;
  /** ISO time the seeded keys were created; they are due for rotation 90 days later. */
  createdAt: string;
  rotateAt: string;
}

export interface SeedResult {
  keys: number;
  seconds: number;
  calls: number;
}

const CONCURRENCY = 16;
const BATCH_WRITE_ITEMS = 25;

async function seed(input: SeedInput): Promise<SeedResult> {
  const aws = clientsAt(input.endpoint);
  const tiers = Object.keys(input.usagePlans).sort();
  const started = performance.now();
  let calls = 0;
  const items: Record<string, unknown>[] = [];

  await inParallel(input.keys, CONCURRENCY, async (n) => {
    const customerId = `scale-${n}`;
    const tier = tiers[n % tiers.length]!;
    const usagePlanId = input.usagePlans[tier]!;
    const key = await aws.apiGateway.send(
      new CreateApiKeyCommand({
        name: keyNameFor(input.keyNamePrefix, customerId),
        description: `keyplan key of customer ${customerId}`,
        enabled: true,
        customerId,
        tags: { 'keyplan:managed': 'true', 'keyplan:customer': customerId, 'keyplan:registration': customerId },
      }),
    );
    const keyId = String(key.id);
    await aws.apiGateway.send(new CreateUsagePlanKeyCommand({ usagePlanId, keyId, keyType: 'API_KEY' }));
    calls += 2;
    items.push(
      {
        pk: `CUSTOMER#${customerId}`,
        sk: `KEY#${keyId}`,
        customerId,
        keyId,
        state: 'ACTIVE',
        usagePlanId,
        tier,
        fingerprint: createHash('sha256').update(String(key.value)).digest('hex').slice(0, 8),
        registrationId: customerId,
        createdAt: input.createdAt,
        rotateAt: input.rotateAt,
        dueType: 'ROTATE',
        dueAt: input.rotateAt,
        generation: 1,
      },
      {
        pk: `CUSTOMER#${customerId}`,
        sk: 'PROFILE',
        customerId,
        email: `${customerId}@scale.example.com`,
        tier,
        status: 'ACTIVE',
        registrationId: customerId,
        // The key list and version a registration's record leaves: rotation takes the customer's
        // lease only for a key the list holds ACTIVE.
        keys: { [keyId]: 'ACTIVE' },
        version: 2,
        createdAt: input.createdAt,
        updatedAt: input.createdAt,
      },
    );
    if ((n + 1) % 2_000 === 0) progress(`seeded ${n + 1}/${input.keys} keys`);
  });

  const batches = Array.from({ length: Math.ceil(items.length / BATCH_WRITE_ITEMS) }, (_, i) =>
    items.slice(i * BATCH_WRITE_ITEMS, (i + 1) * BATCH_WRITE_ITEMS),
  );
  await inParallel(batches.length, CONCURRENCY, async (i) => {
    let pending = batches[i]!.map((Item) => ({ PutRequest: { Item } }));
    while (pending.length > 0) {
      const answer = await aws.dynamo.send(new BatchWriteCommand({ RequestItems: { [input.tableName]: pending } }));
      calls++;
      pending = (answer.UnprocessedItems?.[input.tableName] ?? []) as typeof pending;
    }
  });
  return { keys: input.keys, seconds: (performance.now() - started) / 1000, calls };
}

async function inParallel(count: number, concurrency: number, work: (n: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

await childMain(seed);
