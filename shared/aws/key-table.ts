import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import { type CustomerKey, type DueType } from '../core/model';
import type { KeyStore } from '../core/ports';
import { ifConditionHolds } from './aws-errors';
import { queryPages } from './query-pages';
import { customerPk, DUE_INDEX, KEY_SK_PREFIX, keyItemKey } from './table-keys';
import { DynamoTable } from './dynamo-table';

type Item = Record<string, NativeAttributeValue>;

/** Key items (`CUSTOMER#<id>` / `KEY#<keyId>`) and the sparse due index over them. */
export class KeyTable extends DynamoTable implements KeyStore {
  async findDue(dueType: DueType, now: Date, limit: number): Promise<CustomerKey[]> {
    const keys: CustomerKey[] = [];
    // The index is sparse and partitioned by job, so this reads only what is due: never a scan.
    await queryPages(this.client, { ...this.#dueQuery(dueType, now), Limit: limit }, (page) => {
      keys.push(...(page.Items ?? []).map(toCustomerKey));
      return keys.length < limit;
    });
    return keys.slice(0, limit);
  }

  async countDue(dueType: DueType, now: Date): Promise<number> {
    let count = 0;
    await queryPages(this.client, { ...this.#dueQuery(dueType, now), Select: 'COUNT' }, (page) => {
      count += page.Count ?? 0;
    });
    return count;
  }

  async keysOf(customerId: string): Promise<CustomerKey[]> {
    const keys: CustomerKey[] = [];
    await queryPages(
      this.client,
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :key)',
        ExpressionAttributeValues: { ':pk': customerPk(customerId), ':key': KEY_SK_PREFIX },
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
      TableName: this.table,
      IndexName: DUE_INDEX,
      KeyConditionExpression: 'dueType = :dueType AND dueAt <= :now',
      ExpressionAttributeValues: { ':dueType': dueType, ':now': now.toISOString() },
    };
  }

  async advance(key: CustomerKey, from: DueType, to: { dueType: DueType; dueAt: string }, now: Date): Promise<boolean> {
    const result = await ifConditionHolds(
      this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keyItemKey(key.customerId, key.keyId),
          UpdateExpression: 'SET dueType = :dueType, dueAt = :dueAt, updatedAt = :at',
          // Only from where the job found it: a key that moved on since is left to its own job.
          ConditionExpression: 'dueType = :from',
          ExpressionAttributeValues: { ':dueType': to.dueType, ':dueAt': to.dueAt, ':at': now.toISOString(), ':from': from },
        }),
      ),
    );
    return result !== undefined;
  }
}

export function toCustomerKey(item: Item): CustomerKey {
  return {
    customerId: String(item.customerId),
    keyId: String(item.keyId),
    state: item.state as CustomerKey['state'],
    usagePlanId: String(item.usagePlanId),
    tier: String(item.tier),
    shard: optional(item.shard),
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
