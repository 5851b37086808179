import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CustomerKey } from '../provisioning/registration';
import type { KeyRecord, KeyRecords } from '../reconcile/ports';
import type { ClaimedRotation, KeyStore, RecordRotationInput, RotationAttempt } from '../rotation/ports';
import { guardDynamo, ifConditionHolds } from './aws-errors';
import { queryPages, queryPageStream } from './query-pages';
import { customerPk, DUE, type DueType, DUE_INDEX, KEY_DUE_TYPES, keyItemKey, PROFILE_SK } from './table-keys';

type Item = Record<string, NativeAttributeValue>;

/** Key items (`CUSTOMER#<id>` / `KEY#<keyId>`) and the sparse due index over them. */
export class KeyTable implements KeyStore, KeyRecords {
  readonly #client: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; tableName: string }) {
    this.#client = options.client;
    this.#table = options.tableName;
  }

  async findDue(dueType: DueType, now: Date, limit: number): Promise<CustomerKey[]> {
    const keys: CustomerKey[] = [];
    // The index is sparse and partitioned by job, so this reads only what is due: never a scan.
    await queryPages(this.#client, { ...this.#dueQuery(dueType, now), Limit: limit }, (page) => {
      keys.push(...(page.Items ?? []).map(toCustomerKey));
      return keys.length < limit;
    });
    return keys.slice(0, limit);
  }

  async countDue(dueType: DueType, now: Date): Promise<number> {
    let count = 0;
    await queryPages(this.#client, { ...this.#dueQuery(dueType, now), Select: 'COUNT' }, (page) => {
      count += page.Count ?? 0;
    });
    return count;
  }

  async keysOf(customerId: string): Promise<CustomerKey[]> {
    const keys: CustomerKey[] = [];
    await queryPages(
      this.#client,
      {
        TableName: this.#table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :key)',
        ExpressionAttributeValues: { ':pk': customerPk(customerId), ':key': 'KEY#' },
        ConsistentRead: true,
      },
      (page) => {
        keys.push(...(page.Items ?? []).map(toCustomerKey));
      },
    );
    return keys;
  }

  #dueQuery(dueType: DueType, now: Date) {
    return {
      TableName: this.#table,
      IndexName: DUE_INDEX,
      KeyConditionExpression: 'dueType = :dueType AND dueAt <= :now',
      ExpressionAttributeValues: { ':dueType': dueType, ':now': now.toISOString() },
    };
  }

  async claimRotation(key: CustomerKey, attempt: RotationAttempt, now: Date): Promise<ClaimedRotation | undefined> {
    const result = await ifConditionHolds(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyItemKey(key.customerId, key.keyId),
          UpdateExpression: 'SET rotation = :rotation',
          ConditionExpression:
            '#state = :active AND (attribute_not_exists(rotation) OR rotation.leaseExpiresAt < :nowMs)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':rotation': { ...attempt, claimedAt: now.toISOString() },
            ':active': 'ACTIVE',
            ':nowMs': now.getTime(),
          },
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    if (!result) return undefined;
    const before = result.Attributes ?? {};
    return { key: toCustomerKey(before), resumed: before.rotation !== undefined };
  }

  async releaseRotation(key: CustomerKey, attempt: RotationAttempt): Promise<void> {
    await ifConditionHolds(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyItemKey(key.customerId, key.keyId),
          // The claim stays (with no lease) so the next attempt knows a successor may exist.
          UpdateExpression: 'SET rotation.leaseExpiresAt = :zero',
          ConditionExpression: 'rotation.attemptId = :attemptId',
          ExpressionAttributeValues: { ':zero': 0, ':attemptId': attempt.attemptId },
        }),
      ),
    );
  }

  async recordRotation(input: RecordRotationInput): Promise<void> {
    const { oldKey, attempt, successor, retireAt, next, now } = input;
    const at = now.toISOString();
    await guardDynamo(
      this.#client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.#table,
                Key: keyItemKey(oldKey.customerId, oldKey.keyId),
                UpdateExpression:
                  'SET #state = :retiring, retireAt = :retireAt, successorKeyId = :successor, dueType = :dueType, dueAt = :dueAt, updatedAt = :at REMOVE rotation',
                ConditionExpression: '#state = :active AND rotation.attemptId = :attemptId',
                ExpressionAttributeNames: { '#state': 'state' },
                ExpressionAttributeValues: {
                  ':retiring': 'RETIRING',
                  ':active': 'ACTIVE',
                  ':retireAt': retireAt,
                  ':successor': successor.keyId,
                  ':dueType': next.dueType,
                  ':dueAt': next.dueAt,
                  ':at': at,
                  ':attemptId': attempt.attemptId,
                },
              },
            },
            {
              Put: {
                TableName: this.#table,
                Item: {
                  ...keyItemKey(oldKey.customerId, successor.keyId),
                  customerId: oldKey.customerId,
                  keyId: successor.keyId,
                  state: 'ACTIVE',
                  usagePlanId: oldKey.usagePlanId,
                  tier: oldKey.tier,
                  fingerprint: successor.fingerprint,
                  registrationId: oldKey.registrationId,
                  generation: successor.generation,
                  predecessorKeyId: oldKey.keyId,
                  createdAt: at,
                  rotateAt: successor.rotateAt,
                  dueType: DUE.rotate,
                  dueAt: successor.rotateAt,
                },
              },
            },
          ],
        }),
      ),
    );
  }

  async advance(
    key: CustomerKey,
    from: DueType,
    to: { state?: CustomerKey['state']; dueType?: DueType; dueAt?: string },
    now: Date,
  ): Promise<boolean> {
    const sets = ['updatedAt = :at'];
    const values: Item = { ':at': now.toISOString(), ':from': from };
    if (to.state) {
      sets.push('#state = :state');
      values[':state'] = to.state;
    }
    if (to.dueType && to.dueAt) {
      sets.push('dueType = :dueType', 'dueAt = :dueAt');
      values[':dueType'] = to.dueType;
      values[':dueAt'] = to.dueAt;
    }
    // Leaving the due index altogether is removing its attributes: the index is sparse.
    const remove = to.dueType ? '' : ' REMOVE dueType, dueAt';
    const result = await ifConditionHolds(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyItemKey(key.customerId, key.keyId),
          UpdateExpression: `SET ${sets.join(', ')}${remove}`,
          ConditionExpression: 'dueType = :from',
          ExpressionAttributeNames: to.state ? { '#state': 'state' } : undefined,
          ExpressionAttributeValues: values,
        }),
      ),
    );
    return result !== undefined;
  }
  async *trackedKeyPages(): AsyncIterable<KeyRecord[]> {
    for (const dueType of KEY_DUE_TYPES) {
      const pages = queryPageStream(this.#client, {
        TableName: this.#table,
        IndexName: DUE_INDEX,
        KeyConditionExpression: 'dueType = :dueType',
        ExpressionAttributeValues: { ':dueType': dueType },
      });
      for await (const page of pages) yield (page.Items ?? []).map(toKeyRecord);
    }
  }

  async tiersOf(customerIds: readonly string[]): Promise<Map<string, string>> {
    const tiers = new Map<string, string>();
    // BatchGetItem reads at most 100 items per call and may hand some back unprocessed.
    for (let start = 0; start < customerIds.length; start += 100) {
      let keys: Item[] | undefined = customerIds
        .slice(start, start + 100)
        .map((customerId) => ({ pk: customerPk(customerId), sk: PROFILE_SK }));
      for (let round = 0; keys?.length; round++) {
        const answer: BatchGetCommandOutput = await guardDynamo(
          this.#client.send(
            new BatchGetCommand({
              RequestItems: {
                [this.#table]: { Keys: keys, ProjectionExpression: 'customerId, tier', ConsistentRead: true },
              },
            }),
          ),
        );
        for (const item of answer.Responses?.[this.#table] ?? []) tiers.set(String(item.customerId), String(item.tier));
        keys = answer.UnprocessedKeys?.[this.#table]?.Keys;
        if (keys?.length) await sleep(Math.min(1000, 50 * 2 ** round));
      }
    }
    return tiers;
  }

  async recordRepaired(key: KeyRecord, usagePlanId: string, tier: string, now: Date): Promise<void> {
    // A repair mark moved the key into the cleanup partition; its own job is due again.
    const next =
      key.state === 'RETIRING' && key.retireAt
        ? { dueType: DUE.retire, dueAt: key.retireAt }
        : { dueType: DUE.rotate, dueAt: key.rotateAt ?? now.toISOString() };
    await guardDynamo(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyItemKey(key.customerId, key.keyId),
          UpdateExpression:
            'SET usagePlanId = :plan, tier = :tier, dueType = :dueType, dueAt = :dueAt, updatedAt = :at REMOVE needsRepair',
          ConditionExpression: '#state = :state',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':plan': usagePlanId,
            ':tier': tier,
            ':dueType': next.dueType,
            ':dueAt': next.dueAt,
            ':at': now.toISOString(),
            ':state': key.state,
          },
        }),
      ),
    );
  }

  async recordOrphanDeleted(key: KeyRecord, now: Date): Promise<void> {
    await this.#closeKey(key, 'DELETED', now);
  }

  async recordKeyMissing(key: KeyRecord, now: Date): Promise<void> {
    await this.#closeKey(key, 'MISSING', now);
  }

  /** A final state: the item leaves the due index, so no job looks at it again. */
  async #closeKey(key: KeyRecord, state: 'DELETED' | 'MISSING', now: Date): Promise<void> {
    await ifConditionHolds(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyItemKey(key.customerId, key.keyId),
          UpdateExpression: 'SET #state = :state, updatedAt = :at REMOVE dueType, dueAt, needsRepair',
          // Only from the state the run judged: a key that moved on since is left to its own job.
          ConditionExpression: '#state = :seen',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':state': state, ':seen': key.state, ':at': now.toISOString() },
        }),
      ),
    );
  }
}

function toKeyRecord(item: Item): KeyRecord {
  const repair = item.needsRepair as { usagePlanId?: unknown; since?: unknown } | undefined;
  return {
    ...toCustomerKey(item),
    needsRepair: repair ? { usagePlanId: String(repair.usagePlanId), since: String(repair.since) } : undefined,
  };
}


export function toCustomerKey(item: Item): CustomerKey {
  return {
    customerId: String(item.customerId),
    keyId: String(item.keyId),
    state: item.state as CustomerKey['state'],
    usagePlanId: String(item.usagePlanId),
    tier: String(item.tier),
    fingerprint: optional(item.fingerprint),
    registrationId: String(item.registrationId),
    createdAt: String(item.createdAt),
    rotateAt: optional(item.rotateAt),
    retireAt: optional(item.retireAt),
    generation: Number(item.generation ?? 1),
    successorKeyId: optional(item.successorKeyId),
  };
}

const optional = (value: unknown) => (typeof value === 'string' ? value : undefined);
