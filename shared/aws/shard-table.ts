import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type CustomerKey, DUE } from '../core/model';
import type { ShardState } from '../core/shards';
import type { ShardRecord, ShardRegistry } from '../shards/ports';
import { guardDynamo } from './aws-errors';
import { toCustomerKey } from './key-table';
import { queryPages } from './query-pages';
import { DUE_INDEX, shardKey } from './table-keys';
import { DynamoTable } from './dynamo-table';

/** The shard items (`SHARD#<id>` / `SHARD`): counts, state, the last inventory. */
export class ShardTable extends DynamoTable implements ShardRegistry {
  async describe(shardIds: readonly string[]): Promise<ShardRecord[]> {
    // A shard list is short: one consistent GetItem each (the rights every function that writes
    // the table has already; a BatchGetItem would be one more grant for a handful of items).
    const items = await Promise.all(
      shardIds.map(async (shardId) => {
        const result = await guardDynamo(
          this.client.send(new GetCommand({ TableName: this.table, Key: shardKey(shardId), ConsistentRead: true })),
        );
        return result.Item;
      }),
    );
    return shardIds.map((shardId, index) => {
      const item = items[index];
      return {
        shardId,
        placedKeys: Number(item?.placedKeys ?? 0),
        inventoryKeys: typeof item?.inventoryKeys === 'number' ? item.inventoryKeys : undefined,
        inventoryAt: typeof item?.inventoryAt === 'string' ? item.inventoryAt : undefined,
        state: item?.state === 'draining' || item?.state === 'accepting' ? item.state : undefined,
      };
    });
  }

  async setState(shardId: string, state: ShardState, now: Date): Promise<void> {
    await guardDynamo(
      this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: shardKey(shardId),
          UpdateExpression: 'SET #state = :state, updatedAt = :at',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':state': state, ':at': now.toISOString() },
        }),
      ),
    );
  }

  async activeKeysIn(shardId: string, options: { home: boolean; limit: number }): Promise<CustomerKey[]> {
    const keys: CustomerKey[] = [];
    // Every ACTIVE key waits in the rotation partition of the due index, whenever it is due.
    await queryPages(
      this.client,
      {
        TableName: this.table,
        IndexName: DUE_INDEX,
        KeyConditionExpression: 'dueType = :rotate',
        // SHARD is a DynamoDB reserved word, like STATE.
        FilterExpression: options.home
          ? '(#shard = :shard OR attribute_not_exists(#shard)) AND #state = :active'
          : '#shard = :shard AND #state = :active',
        ExpressionAttributeNames: { '#state': 'state', '#shard': 'shard' },
        ExpressionAttributeValues: { ':rotate': DUE.rotate, ':shard': shardId, ':active': 'ACTIVE' },
      },
      (page) => {
        keys.push(...(page.Items ?? []).map(toCustomerKey));
        return keys.length < options.limit;
      },
    );
    return keys.slice(0, options.limit);
  }
}
