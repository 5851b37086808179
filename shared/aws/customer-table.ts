import { DeleteCommand, type DynamoDBDocumentClient, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { CustomerLock, CustomerStore } from '../customers/ports';
import type { CustomerKey } from '../provisioning/registration';
import { awsErrorName, guardDynamo, ifConditionHolds, translateDynamoError } from './aws-errors';
import { customerPk, DUE, keyItemKey, PROFILE_SK, regKey } from './table-keys';

/** The customer lock item (`CUSTOMER#<id>` / `LOCK`) and the customer-level writes. */
export class CustomerTable implements CustomerLock, CustomerStore {
  readonly #client: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; tableName: string }) {
    this.#client = options.client;
    this.#table = options.tableName;
  }

  async acquire(
    customerId: string,
    holder: { owner: string; operation: string; leaseSeconds: number },
    now: Date,
  ): Promise<{ acquired: true } | { acquired: false; retryAfterSeconds: number }> {
    try {
      await this.#client.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            pk: customerPk(customerId),
            sk: 'LOCK',
            owner: holder.owner,
            operation: holder.operation,
            lockedUntil: now.getTime() + holder.leaseSeconds * 1000,
            // A lock whose holder died is taken over after its lease; TTL tidies it up later.
            expiresAt: Math.floor(now.getTime() / 1000) + holder.leaseSeconds + 86_400,
          },
          ConditionExpression: 'attribute_not_exists(pk) OR lockedUntil < :now',
          ExpressionAttributeValues: { ':now': now.getTime() },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { acquired: true };
    } catch (error) {
      if (awsErrorName(error) !== 'ConditionalCheckFailedException') throw translateDynamoError(error);
      const held = (error as { Item?: { lockedUntil?: { N?: string } } }).Item?.lockedUntil?.N;
      const remainingMs = held ? Number(held) - now.getTime() : 1000;
      return { acquired: false, retryAfterSeconds: Math.max(1, Math.ceil(remainingMs / 1000)) };
    }
  }

  async release(customerId: string, owner: string): Promise<void> {
    await ifConditionHolds(
      this.#client.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { pk: customerPk(customerId), sk: 'LOCK' },
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      ),
    );
  }

  async setPlan(key: CustomerKey, usagePlanId: string, tier: string, now: Date): Promise<void> {
    await guardDynamo(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyItemKey(key.customerId, key.keyId),
          UpdateExpression: 'SET usagePlanId = :plan, tier = :tier, updatedAt = :at REMOVE needsRepair',
          ExpressionAttributeValues: { ':plan': usagePlanId, ':tier': tier, ':at': now.toISOString() },
        }),
      ),
    );
  }

  async markNeedsRepair(key: CustomerKey, intendedUsagePlanId: string, now: Date): Promise<void> {
    await guardDynamo(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyItemKey(key.customerId, key.keyId),
          // In the cleanup partition of the due index, where the reconciler looks.
          UpdateExpression: 'SET needsRepair = :repair, dueType = :cleanup, dueAt = :at, updatedAt = :at',
          ExpressionAttributeValues: {
            ':repair': { usagePlanId: intendedUsagePlanId, since: now.toISOString() },
            ':cleanup': DUE.cleanup,
            ':at': now.toISOString(),
          },
        }),
      ),
    );
  }

  async recordTierChange(
    customerId: string,
    change: { from: string; to: string; requestId: string },
    now: Date,
  ): Promise<void> {
    await guardDynamo(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: customerPk(customerId), sk: PROFILE_SK },
          UpdateExpression:
            'SET tier = :to, updatedAt = :at, tierHistory = list_append(if_not_exists(tierHistory, :empty), :change)',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: {
            ':to': change.to,
            ':at': now.toISOString(),
            ':empty': [],
            ':change': [{ ...change, at: now.toISOString() }],
          },
        }),
      ),
    );
  }

  async markRevokedKey(key: CustomerKey, deleteAt: string, now: Date): Promise<void> {
    await guardDynamo(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyItemKey(key.customerId, key.keyId),
          UpdateExpression: 'SET #state = :disabled, dueType = :delete, dueAt = :deleteAt, updatedAt = :at REMOVE rotation',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':disabled': 'DISABLED',
            ':delete': DUE.delete,
            ':deleteAt': deleteAt,
            ':at': now.toISOString(),
          },
        }),
      ),
    );
  }

  async markCustomerRevoked(customerId: string, registrationId: string, now: Date): Promise<void> {
    const at = now.toISOString();
    await guardDynamo(
      this.#client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.#table,
                Key: { pk: customerPk(customerId), sk: PROFILE_SK },
                UpdateExpression: 'SET #status = :revoked, revokedAt = :at, updatedAt = :at',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':revoked': 'REVOKED', ':at': at },
              },
            },
            {
              Update: {
                TableName: this.#table,
                Key: regKey(registrationId),
                // Nothing is left to resume for a revoked customer (an email still owed is moot).
                UpdateExpression: 'SET #state = :revoked, updatedAt = :at REMOVE dueType, dueAt',
                ConditionExpression: 'attribute_exists(pk)',
                ExpressionAttributeNames: { '#state': 'state' },
                ExpressionAttributeValues: { ':revoked': 'REVOKED', ':at': at },
              },
            },
          ],
        }),
      ),
    );
  }
}
