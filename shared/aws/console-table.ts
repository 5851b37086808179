import { paginateScan } from '@aws-sdk/lib-dynamodb';
import type { NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import type { DueType } from '../core/model';
import type {
  CustomerProfile,
  CustomerProfiles,
  DueEntry,
  DueIndex,
  FailedRegistration,
  FailedRegistrations,
  RecentFailures,
  TierChange,
} from '../console/ports';
import { translateDynamoError } from './aws-errors';
import { toCustomerKey } from './key-table';
import { customerItems } from './registration-reads';
import { queryPageStream } from './query-pages';
import { DUE_INDEX, KEY_SK_PREFIX, PROFILE_SK } from './table-keys';
import { DynamoTable } from './dynamo-table';

type Item = Record<string, NativeAttributeValue>;

/** The console's reads of the one table: the due index counted, profiles, failed registrations. */
export class ConsoleTable extends DynamoTable implements DueIndex, CustomerProfiles, FailedRegistrations {
  async *entries(dueType: DueType): AsyncIterable<DueEntry> {
    // The whole partition, but only three short attributes of each item come back: a page then
    // carries a whole 1 MB of items read.
    const pages = queryPageStream(this.client, {
      TableName: this.table,
      IndexName: DUE_INDEX,
      KeyConditionExpression: 'dueType = :dueType',
      ProjectionExpression: 'dueAt, retireAt, #shard',
      ExpressionAttributeNames: { '#shard': 'shard' },
      ExpressionAttributeValues: { ':dueType': dueType },
    });
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        yield { dueAt: String(item.dueAt), retireAt: optional(item.retireAt), shard: optional(item.shard) };
      }
    }
  }

  async profileOf(customerId: string): Promise<CustomerProfile | undefined> {
    // Eventually consistent: a page shows what the table held a moment ago, at half the cost.
    const items = await customerItems(this.client, this.table, customerId, false);
    const profile = items.find((item) => item.sk === PROFILE_SK);
    if (!profile) return undefined;
    return {
      customerId: String(profile.customerId ?? customerId),
      email: String(profile.email ?? ''),
      name: optional(profile.name),
      tier: String(profile.tier ?? ''),
      status: String(profile.status ?? ''),
      registrationId: String(profile.registrationId ?? ''),
      shard: optional(profile.shard),
      emailedKeyId: optional(profile.emailedKeyId),
      createdAt: String(profile.createdAt ?? ''),
      updatedAt: String(profile.updatedAt ?? ''),
      revokedAt: optional(profile.revokedAt),
      tierHistory: Array.isArray(profile.tierHistory) ? (profile.tierHistory as Item[]).map(toTierChange) : [],
      keys: items.filter((item) => String(item.sk).startsWith(KEY_SK_PREFIX)).map(toCustomerKey),
    };
  }

  async recentFailures(limit: number): Promise<RecentFailures> {
    // FAILED registrations are in no index (they leave the due index when they fail, and expire
    // after REGISTRATION_RETENTION_DAYS): only a scan finds them. Filtered and projected, so only
    // the failures travel; the console keeps the answer a while (shared/console/refreshing.ts).
    const failures: FailedRegistration[] = [];
    try {
      const pages = paginateScan(
        { client: this.client },
        {
          TableName: this.table,
          FilterExpression: 'begins_with(pk, :reg) AND #state = :failed',
          ProjectionExpression: 'registrationId, customerId, tier, failureReason, updatedAt',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':reg': 'REG#', ':failed': 'FAILED' },
        },
      );
      for await (const page of pages) {
        for (const item of page.Items ?? []) {
          failures.push({
            registrationId: String(item.registrationId),
            customerId: String(item.customerId),
            tier: String(item.tier ?? ''),
            failureReason: optional(item.failureReason),
            updatedAt: String(item.updatedAt ?? ''),
          });
        }
      }
    } catch (error) {
      throw translateDynamoError(error);
    }
    failures.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
    return { failures: failures.slice(0, limit), total: failures.length, asOf: new Date().toISOString() };
  }
}

function toTierChange(item: Item): TierChange {
  return { from: String(item.from ?? ''), to: String(item.to ?? ''), requestId: optional(item.requestId), at: String(item.at ?? '') };
}

const optional = (value: unknown) => (typeof value === 'string' ? value : undefined);
