import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { TransientAwsError } from '../errors';

/** Names the SDK gives AWS throttling answers; a throttled call did not happen and is safe to repeat. */
const THROTTLING = new Set([
  'TooManyRequestsException',
  'LimitExceededException',
  'ThrottlingException',
  'Throttling',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  // SQS, answered with HTTP 403.
  'RequestThrottled',
]);

const SERVER_SIDE = new Set([
  'ServiceUnavailableException',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'TransactionConflictException',
]);

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED']);

interface AwsLikeError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function asAwsError(error: unknown): AwsLikeError {
  return typeof error === 'object' && error !== null ? (error as AwsLikeError) : {};
}

export function awsErrorName(error: unknown): string {
  return asAwsError(error).name ?? 'Error';
}

export function isThrottling(error: unknown): boolean {
  const e = asAwsError(error);
  return THROTTLING.has(e.name ?? '') || e.$metadata?.httpStatusCode === 429;
}

/**
 * Throttling, 5xx and dropped connections: worth retrying later. Unlike throttling, a 5xx or a
 * dropped connection leaves open whether the call took effect, so non-idempotent callers must
 * check before repeating it.
 */
export function isTransient(error: unknown): boolean {
  const e = asAwsError(error);
  if (isThrottling(error) || SERVER_SIDE.has(e.name ?? '')) return true;
  if ((e.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  return NETWORK_CODES.has(e.code ?? '') || e.name === 'TimeoutError' || e.name === 'AbortError';
}

/** Why each item of a cancelled transaction failed, in the order of the transaction's items. */
export interface CancellationReason {
  Code?: string | undefined;
  /** The item as it was, when the item asked for it (ReturnValuesOnConditionCheckFailure ALL_OLD). */
  Item?: Record<string, AttributeValue> | undefined;
}

/** The reasons of a cancelled TransactWriteItems; undefined for any other error. */
export function cancellationReasons(error: unknown): CancellationReason[] | undefined {
  if (awsErrorName(error) !== 'TransactionCanceledException') return undefined;
  return (error as { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? [];
}

/** Whether the item at `index` of a cancelled transaction failed its condition. */
export const conditionFailed = (reasons: readonly CancellationReason[] | undefined, index: number) =>
  reasons?.[index]?.Code === 'ConditionalCheckFailed';

/**
 * A transaction cancelled only because another one touched the same items at the same moment (or
 * by throttling) did nothing and is safe to repeat; a failed condition is the caller's to judge.
 */
const TRANSIENT_CANCELLATIONS = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded']);

/** DynamoDB's transient failures become TransientAwsError; anything else passes unchanged. */
export function translateDynamoError(error: unknown): unknown {
  const transientCancellation = cancellationReasons(error)?.some(
    (reason) => reason.Code !== undefined && TRANSIENT_CANCELLATIONS.has(reason.Code),
  );
  return isTransient(error) || transientCancellation
    ? new TransientAwsError(`DynamoDB is unavailable: ${awsErrorName(error)}`, 2, {
        cause: error,
        notApplied: isThrottling(error) || transientCancellation === true,
      })
    : error;
}

export async function guardDynamo<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw translateDynamoError(error);
  }
}

/**
 * Runs a conditional write: `undefined` when its condition did not hold (someone else got there
 * first, or the item moved on), other DynamoDB errors translated.
 */
export async function ifConditionHolds<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (awsErrorName(error) === 'ConditionalCheckFailedException') return undefined;
    throw translateDynamoError(error);
  }
}
