import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type NativeAttributeValue, unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { CustomerAlreadyRegisteredError, RegistrationInProgressError, TransientAwsError } from '../errors';
import type {
  ClaimResult,
  RecordFailureInput,
  RecordKeyInput,
  RegistrationStore,
  StalledRegistrations,
} from '../provisioning/ports';
import type { Customer, Registration } from '../provisioning/registration';
import { awsErrorName, guardDynamo, ifConditionHolds, translateDynamoError } from './aws-errors';
import { queryPages } from './query-pages';
import { customerPk, DUE, DUE_INDEX, PROFILE_SK, regKey } from './table-keys';
import { toCustomerKey } from './key-table';

const DAY_S = 86_400;


type Item = Record<string, NativeAttributeValue>;

export interface RegistrationTableOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Unfinished claims and failed registrations expire after this; finished ones are kept. */
  retentionDays: number;
  /**
   * An unfinished registration is due for the resume sweep this long after its claim (or its
   * latest attempt, doubling with each attempt): the caller's own retries usually come first.
   */
  resumeAfterSeconds?: number;
}

/** The sweep's backoff stops doubling here: 15 minutes becomes at most 16 hours. */
const MAX_RESUME_DOUBLINGS = 6;

/** The one DynamoDB table (DESIGN §2) behind the provisioning saga. */
export class RegistrationTable implements RegistrationStore, StalledRegistrations {
  readonly #client: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #retentionSeconds: number;
  readonly #resumeAfterMs: number;

  constructor(options: RegistrationTableOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
    this.#retentionSeconds = options.retentionDays * DAY_S;
    this.#resumeAfterMs = (options.resumeAfterSeconds ?? 900) * 1000;
  }

  async claim(registration: Registration, now: Date): Promise<ClaimResult> {
    try {
      await this.#client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.#table,
                Item: {
                  ...regKey(registration.registrationId),
                  ...registration,
                  expiresAt: this.#expiry(now),
                  // In the sweep's partition until it finishes: nothing is lost if every caller
                  // and every worker dies before then.
                  dueType: DUE.resume,
                  dueAt: this.#resumeAt(now, 0),
                },
                ConditionExpression: 'attribute_not_exists(pk)',
                // A replay learns the recorded result from the failed write itself: one call.
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
            {
              ConditionCheck: {
                TableName: this.#table,
                Key: { pk: customerPk(registration.customerId), sk: PROFILE_SK },
                ...customerFreeFor(registration),
                // Tells a revoked customer from one registered under another id.
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
          ],
        }),
      );
      return { kind: 'claimed', registration };
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw translateDynamoError(error);
      if (reasons[0]?.Code === 'ConditionalCheckFailed') {
        const existing = reasons[0].Item
          ? toRegistration(unmarshall(reasons[0].Item))
          : await this.getRegistration(registration.registrationId);
        if (existing) return { kind: 'exists', registration: existing };
      }
      if (reasons[1]?.Code === 'ConditionalCheckFailed') {
        const profile = reasons[1].Item ? unmarshall(reasons[1].Item) : undefined;
        return { kind: profile?.status === 'REVOKED' ? 'customer-revoked' : 'customer-taken' };
      }
      throw new TransientAwsError('claim was cancelled by a concurrent transaction', 1, { cause: error });
    }
  }

  async takeOver(
    registration: Registration,
    attempt: { attemptId: string; leaseExpiresAt: number },
    now: Date,
  ): Promise<Registration | undefined> {
    const result = await ifConditionHolds(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: regKey(registration.registrationId),
          // A QUEUED registration becomes PENDING: from now on a crash may leave a key behind,
          // and the next attempt must look for it.
          UpdateExpression:
            'SET attemptId = :attemptId, leaseExpiresAt = :lease, updatedAt = :now, #state = :state, dueType = :resume, dueAt = :resumeAt ADD resumeAttempts :one',
          // Only the attempt that saw the expired lease of `registration.attemptId` wins.
          ConditionExpression: 'attemptId = :previous AND leaseExpiresAt < :nowMs AND #state = :seen',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':state': registration.state === 'QUEUED' ? 'PENDING' : registration.state,
            ':seen': registration.state,
            ':attemptId': attempt.attemptId,
            ':lease': attempt.leaseExpiresAt,
            ':now': now.toISOString(),
            ':previous': registration.attemptId,
            ':nowMs': now.getTime(),
            ':resume': DUE.resume,
            ':resumeAt': this.#resumeAt(now, (registration.resumeAttempts ?? 0) + 1),
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return result ? toRegistration(result.Attributes ?? {}) : undefined;
  }

  async recordKey(input: RecordKeyInput): Promise<Registration> {
    const { registration, keyId, fingerprint, state, rotateAt, now } = input;
    const at = now.toISOString();
    const updated: Registration = {
      ...registration,
      state,
      keyId,
      keyFingerprint: fingerprint,
      leaseExpiresAt: 0,
      updatedAt: at,
    };
    try {
      await this.#client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.#table,
                Key: regKey(registration.registrationId),
                // A registration that holds a key is kept: were it to expire, a replay would claim
                // it afresh and create a second key.
                // An EMAIL_PENDING registration stays due: the sweep sends the email it owes.
                UpdateExpression:
                  'SET #state = :state, keyId = :keyId, keyFingerprint = :fp, leaseExpiresAt = :zero, updatedAt = :at REMOVE expiresAt' +
                  (state === 'ACTIVE' ? ', dueType, dueAt' : ''),
                ConditionExpression: 'attemptId = :attemptId',
                ExpressionAttributeNames: { '#state': 'state' },
                ExpressionAttributeValues: {
                  ':state': state,
                  ':keyId': keyId,
                  ':fp': fingerprint,
                  ':zero': 0,
                  ':at': at,
                  ':attemptId': registration.attemptId,
                },
              },
            },
            {
              Update: {
                TableName: this.#table,
                Key: { pk: customerPk(registration.customerId), sk: `KEY#${keyId}` },
                UpdateExpression:
                  'SET customerId = :customerId, keyId = :keyId, #state = if_not_exists(#state, :active), usagePlanId = :plan, tier = :tier, fingerprint = :fp, registrationId = :registrationId, createdAt = if_not_exists(createdAt, :at), rotateAt = if_not_exists(rotateAt, :rotateAt), dueType = if_not_exists(dueType, :due), dueAt = if_not_exists(dueAt, :rotateAt), generation = if_not_exists(generation, :one)',
                ExpressionAttributeNames: { '#state': 'state' },
                ExpressionAttributeValues: {
                  ':customerId': registration.customerId,
                  ':keyId': keyId,
                  ':active': 'ACTIVE',
                  ':plan': registration.usagePlanId,
                  ':tier': registration.tier,
                  ':fp': fingerprint,
                  ':registrationId': registration.registrationId,
                  ':at': at,
                  ':rotateAt': rotateAt,
                  ':due': DUE.rotate,
                  ':one': 1,
                },
              },
            },
            {
              Update: {
                TableName: this.#table,
                Key: { pk: customerPk(registration.customerId), sk: PROFILE_SK },
                UpdateExpression:
                  'SET customerId = :customerId, email = :email, tier = :tier, #status = :active, registrationId = :registrationId, createdAt = if_not_exists(createdAt, :at), updatedAt = :at',
                ConditionExpression: customerFreeFor(registration).ConditionExpression,
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: {
                  ...customerFreeFor(registration).ExpressionAttributeValues,
                  ':customerId': registration.customerId,
                  ':email': registration.email,
                  ':tier': registration.tier,
                  ':active': 'ACTIVE',
                  ':registrationId': registration.registrationId,
                  ':at': at,
                },
              },
            },
          ],
        }),
      );
      return updated;
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (reasons?.[2]?.Code === 'ConditionalCheckFailed') {
        throw new CustomerAlreadyRegisteredError(`customer ${registration.customerId} has another registration`);
      }
      if (reasons?.[0]?.Code === 'ConditionalCheckFailed') {
        throw new RegistrationInProgressError('another attempt took over this registration', 1);
      }
      throw translateDynamoError(error);
    }
  }

  async recordFailure(input: RecordFailureInput): Promise<Registration> {
    const { registration, reason, detail, orphanKeyId, now } = input;
    const at = now.toISOString();
    const failed: Registration = {
      ...registration,
      state: 'FAILED',
      failureReason: reason,
      orphanKeyId,
      leaseExpiresAt: 0,
      updatedAt: at,
    };
    const failRegistration = {
      Update: {
        TableName: this.#table,
        Key: regKey(registration.registrationId),
        UpdateExpression:
          'SET #state = :failed, failureReason = :reason, failureDetail = :detail, leaseExpiresAt = :zero, updatedAt = :at, expiresAt = :expiresAt' +
          (orphanKeyId ? ', orphanKeyId = :orphan' : '') +
          ' REMOVE dueType, dueAt',
        ConditionExpression: 'attemptId = :attemptId',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: {
          ':failed': 'FAILED',
          ':reason': reason,
          ':detail': detail,
          ':zero': 0,
          ':at': at,
          ':expiresAt': this.#expiry(now),
          ':attemptId': registration.attemptId,
          ...(orphanKeyId ? { ':orphan': orphanKeyId } : {}),
        },
      },
    };
    // An orphan goes into the cleanup partition of the due index, where the reconciler finds it
    // without scanning.
    const recordOrphan = orphanKeyId
      ? [
          {
            Put: {
              TableName: this.#table,
              Item: {
                pk: customerPk(registration.customerId),
                sk: `KEY#${orphanKeyId}`,
                customerId: registration.customerId,
                keyId: orphanKeyId,
                state: 'ORPHANED',
                usagePlanId: registration.usagePlanId,
                tier: registration.tier,
                registrationId: registration.registrationId,
                createdAt: at,
                dueType: DUE.cleanup,
                dueAt: at,
              },
            },
          },
        ]
      : [];
    try {
      await this.#client.send(new TransactWriteCommand({ TransactItems: [failRegistration, ...recordOrphan] }));
      return failed;
    } catch (error) {
      if (cancellationReasons(error)?.[0]?.Code === 'ConditionalCheckFailed') {
        throw new RegistrationInProgressError('another attempt took over this registration', 1);
      }
      throw translateDynamoError(error);
    }
  }

  async failUnclaimed(registrationId: string, failure: { reason: string; detail: string }, now: Date): Promise<boolean> {
    const result = await ifConditionHolds(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: regKey(registrationId),
          UpdateExpression:
            'SET #state = :failed, failureReason = :reason, failureDetail = :detail, leaseExpiresAt = :zero, updatedAt = :at, expiresAt = :expiresAt REMOVE dueType, dueAt',
          ConditionExpression: 'attribute_exists(pk) AND (#state = :queued OR (#state = :pending AND leaseExpiresAt < :nowMs))',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':failed': 'FAILED',
            ':reason': failure.reason,
            ':detail': failure.detail,
            ':zero': 0,
            ':at': now.toISOString(),
            ':expiresAt': this.#expiry(now),
            ':queued': 'QUEUED',
            ':pending': 'PENDING',
            ':nowMs': now.getTime(),
          },
        }),
      ),
    );
    return result !== undefined;
  }

  async releaseLease(registration: Registration, now: Date): Promise<void> {
    await ifConditionHolds(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: regKey(registration.registrationId),
          UpdateExpression: 'SET leaseExpiresAt = :zero, updatedAt = :at',
          ConditionExpression: 'attemptId = :attemptId',
          ExpressionAttributeValues: { ':zero': 0, ':at': now.toISOString(), ':attemptId': registration.attemptId },
        }),
      ),
    );
  }

  async getRegistration(registrationId: string): Promise<Registration | undefined> {
    const result = await guardDynamo(
      this.#client.send(new GetCommand({ TableName: this.#table, Key: regKey(registrationId), ConsistentRead: true })),
    );
    return result.Item ? toRegistration(result.Item) : undefined;
  }

  async getCustomer(customerId: string): Promise<Customer | undefined> {
    const items: Item[] = [];
    await queryPages(
      this.#client,
      {
        TableName: this.#table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': customerPk(customerId) },
        ConsistentRead: true,
      },
      (page) => {
        items.push(...(page.Items ?? []));
      },
    );
    const profile = items.find((item) => item.sk === PROFILE_SK);
    if (!profile) return undefined;
    const keys = items
      .filter((item) => String(item.sk).startsWith('KEY#') && item.state !== 'ORPHANED')
      .map(toCustomerKey);
    return {
      customerId: String(profile.customerId),
      email: String(profile.email),
      tier: String(profile.tier),
      status: String(profile.status),
      registrationId: String(profile.registrationId),
      createdAt: String(profile.createdAt),
      updatedAt: String(profile.updatedAt),
      keys,
    };
  }

  async findStalled(now: Date, limit: number): Promise<Registration[]> {
    const stalled: Registration[] = [];
    await queryPages(
      this.#client,
      {
        TableName: this.#table,
        IndexName: DUE_INDEX,
        KeyConditionExpression: 'dueType = :resume AND dueAt <= :now',
        ExpressionAttributeValues: { ':resume': DUE.resume, ':now': now.toISOString() },
        Limit: limit,
      },
      (page) => {
        stalled.push(...(page.Items ?? []).map(toRegistration));
        return stalled.length < limit;
      },
    );
    return stalled.slice(0, limit);
  }

  async stopResuming(registration: Registration, now: Date): Promise<void> {
    await ifConditionHolds(
      this.#client.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: regKey(registration.registrationId),
          UpdateExpression: 'SET updatedAt = :at REMOVE dueType, dueAt',
          ConditionExpression: 'attemptId = :attemptId',
          ExpressionAttributeValues: { ':at': now.toISOString(), ':attemptId': registration.attemptId },
        }),
      ),
    );
  }

  /** When the sweep may take the registration up after `attempts` resumes. */
  #resumeAt(now: Date, attempts: number): string {
    const delay = this.#resumeAfterMs * 2 ** Math.min(attempts, MAX_RESUME_DOUBLINGS);
    return new Date(now.getTime() + delay).toISOString();
  }

  #expiry(now: Date): number {
    return Math.floor(now.getTime() / 1000) + this.#retentionSeconds;
  }
}

interface CancellationReason {
  Code?: string | undefined;
  Item?: Record<string, AttributeValue> | undefined;
}

function cancellationReasons(error: unknown): CancellationReason[] | undefined {
  if (error instanceof TransactionCanceledException || awsErrorName(error) === 'TransactionCanceledException') {
    return (error as { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? [];
  }
  return undefined;
}

function toRegistration(item: Item): Registration {
  return {
    registrationId: String(item.registrationId),
    customerId: String(item.customerId),
    email: String(item.email),
    tier: String(item.tier),
    name: optionalString(item.name),
    payloadHash: String(item.payloadHash),
    usagePlanId: String(item.usagePlanId),
    state: item.state as Registration['state'],
    keyId: optionalString(item.keyId),
    keyFingerprint: optionalString(item.keyFingerprint),
    failureReason: optionalString(item.failureReason),
    orphanKeyId: optionalString(item.orphanKeyId),
    reactivate: item.reactivate === true ? true : undefined,
    resumeAttempts: typeof item.resumeAttempts === 'number' ? item.resumeAttempts : undefined,
    leaseExpiresAt: Number(item.leaseExpiresAt ?? 0),
    attemptId: String(item.attemptId),
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
  };
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * The customer profile may take this registration: there is none, it is this registration's, or
 * (an explicit re-activation) the customer was revoked.
 */
function customerFreeFor(registration: Registration) {
  return registration.reactivate
    ? {
        ConditionExpression:
          'attribute_not_exists(pk) OR registrationId = :registrationId OR #status = :revokedStatus',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':registrationId': registration.registrationId, ':revokedStatus': 'REVOKED' },
      }
    : {
        ConditionExpression: 'attribute_not_exists(pk) OR registrationId = :registrationId',
        ExpressionAttributeValues: { ':registrationId': registration.registrationId },
      };
}
