import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { NativeAttributeValue } from '@aws-sdk/util-dynamodb';
import type { RegistrationStore } from '../core/ports';
import type { Customer, Registration } from '../core/registration';
import { guardDynamo } from './aws-errors';
import { DynamoTable } from './dynamo-table';
import { toCustomerKey } from './key-table';
import { queryPages } from './query-pages';
import { customerPk, KEY_SK_PREFIX, PROFILE_SK, regKey } from './table-keys';

type Item = Record<string, NativeAttributeValue>;

/**
 * The customer read, apart from RegistrationTable's writes: rotation reads a customer (a
 * reminder's address) and writes no registration, and bundles only this.
 */
export class CustomerReads extends DynamoTable implements Pick<RegistrationStore, 'getCustomer'> {
  async getCustomer(customerId: string): Promise<Customer | undefined> {
    const items = await customerItems(this.client, this.table, customerId, true);
    const profile = items.find((item) => item.sk === PROFILE_SK);
    if (!profile) return undefined;
    // A registration in progress changes nothing readers see until it records its key: a
    // re-activation is still REVOKED, a first registration not registered at all.
    const status = profile.status === 'PENDING' ? (profile.priorStatus ?? 'UNREGISTERED') : profile.status;
    if (status === undefined || status === 'UNREGISTERED') return undefined;
    const keys = items
      .filter((item) => String(item.sk).startsWith(KEY_SK_PREFIX) && item.state !== 'ORPHANED')
      .map(toCustomerKey);
    const customer = { status: String(status), shard: optionalString(profile.shard), eventSeq: Number(profile.eventSeq ?? 0), keys } as Customer;
    for (const field of CUSTOMER_TEXT) customer[field] = String(profile[field]);
    return customer;
  }
}

/** The customer read and the registration's: the reconciler reads a registration and writes none. */
export class RegistrationReads extends CustomerReads implements Pick<RegistrationStore, 'getRegistration' | 'getCustomer'> {
  async getRegistration(registrationId: string): Promise<Registration | undefined> {
    const result = await guardDynamo(
      this.client.send(new GetCommand({ TableName: this.table, Key: regKey(registrationId), ConsistentRead: true })),
    );
    return result.Item ? toRegistration(result.Item) : undefined;
  }
}

/**
 * A customer's KEY# items and PROFILE, in one query: the customer's events (EVENT#, sorting before
 * both) are the audit trail's, as many as 400 days of them, and not these reads'.
 */
export async function customerItems(
  client: DynamoDBDocumentClient,
  table: string,
  customerId: string,
  consistentRead: boolean,
): Promise<Item[]> {
  const items: Item[] = [];
  await queryPages(
    client,
    {
      TableName: table,
      KeyConditionExpression: 'pk = :pk AND sk >= :keys',
      ExpressionAttributeValues: { ':pk': customerPk(customerId), ':keys': KEY_SK_PREFIX },
      ConsistentRead: consistentRead,
    },
    (page) => void items.push(...(page.Items ?? [])),
  );
  return items;
}

/** What every registered customer's profile holds as text. */
const CUSTOMER_TEXT = ['customerId', 'email', 'tier', 'registrationId', 'createdAt', 'updatedAt'] as const;

/** What every registration item holds as text. */
const TEXT = ['registrationId', 'customerId', 'email', 'tier', 'payloadHash', 'usagePlanId', 'attemptId', 'createdAt', 'updatedAt'] as const;
/** Text a registration may lack (undefined when it does). */
const OPTIONAL_TEXT = ['name', 'shard', 'keyId', 'keyFingerprint', 'failureReason', 'orphanKeyId'] as const;

export function toRegistration(item: Item): Registration {
  const registration = {
    state: item.state as Registration['state'],
    shardCounted: item.shardCounted === true ? true : undefined,
    reactivate: item.reactivate === true ? true : undefined,
    resumeAttempts: typeof item.resumeAttempts === 'number' ? item.resumeAttempts : undefined,
    leaseExpiresAt: Number(item.leaseExpiresAt ?? 0),
  } as Registration;
  for (const field of TEXT) registration[field] = String(item[field]);
  for (const field of OPTIONAL_TEXT) registration[field] = optionalString(item[field]);
  return registration;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
