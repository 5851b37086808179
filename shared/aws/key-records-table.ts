import { BatchGetCommand, type BatchGetCommandOutput, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { KEY_DUE_TYPES } from '../core/model';
import type { KeyRecord, KeyRecords } from '../reconcile/ports';
import { guardDynamo, ifConditionHolds } from './aws-errors';
import { toCustomerKey } from './key-table';
import { queryPageStream } from './query-pages';
import { DUE_INDEX, keyItemKey, profileKey, shardKey } from './table-keys';
import { DynamoTable } from './dynamo-table';

type Item = Record<string, NativeAttributeValue>;

/**
 * The table as the reconciler reads and closes it: every tracked key item, the customers' tiers,
 * each shard's inventory. Apart from KeyTable so that only the reconciler bundles it.
 */
export class KeyRecordsTable extends DynamoTable implements KeyRecords {
  async *trackedKeyPages(): AsyncIterable<KeyRecord[]> {
    for (const dueType of KEY_DUE_TYPES) {
      const pages = queryPageStream(this.client, {
        TableName: this.table,
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
      let keys: Item[] | undefined = customerIds.slice(start, start + 100).map((customerId) => profileKey(customerId));
      for (let round = 0; keys?.length; round++) {
        const answer: BatchGetCommandOutput = await guardDynamo(
          this.client.send(
            new BatchGetCommand({
              RequestItems: {
                [this.table]: { Keys: keys, ProjectionExpression: 'customerId, tier', ConsistentRead: true },
              },
            }),
          ),
        );
        // A customer only reserved by its first registration has no tier yet.
        for (const item of answer.Responses?.[this.table] ?? []) {
          if (typeof item.tier === 'string') tiers.set(String(item.customerId), item.tier);
        }
        keys = answer.UnprocessedKeys?.[this.table]?.Keys;
        if (keys?.length) await sleep(Math.min(1000, 50 * 2 ** round));
      }
    }
    return tiers;
  }

  /** A final state: the item leaves the due index, so no job looks at it again. */
  async recordInventory(shardId: string, accountKeys: number, now: Date): Promise<void> {
    // On the shard's item: placement stops at the shard's mark by this count too.
    await guardDynamo(
      this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: shardKey(shardId),
          UpdateExpression: 'SET inventoryKeys = :keys, inventoryAt = :at, updatedAt = :at',
          ExpressionAttributeValues: { ':keys': accountKeys, ':at': now.toISOString() },
        }),
      ),
    );
  }

  async closeRecord(key: KeyRecord, state: 'DELETED' | 'MISSING', now: Date): Promise<void> {
    await ifConditionHolds(
      this.client.send(
        new UpdateCommand({
          TableName: this.table,
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
