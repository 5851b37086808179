import type { APIGatewayProxyResult } from 'aws-lambda';
import {
  CustomerAlreadyRegisteredError,
  CustomerBusyError,
  CustomerRevokedError,
  IdempotencyKeyReusedError,
  KeyplanError,
  NoShardCapacityError,
  NotFoundError,
  PayloadTooLargeError,
  ProvisioningFailedError,
  RegistrationInProgressError,
  RotationIncompleteError,
  ShardUnavailableError,
  TierChangeFailedError,
  TransientAwsError,
  UsageUnavailableError,
  ValidationError,
} from '../errors';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** RFC 9457 problem details. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  field?: string;
}

interface Mapping {
  status: number;
  title: string;
  /** Whether the error's own message is safe to show; 5xx messages never are. */
  showDetail: boolean;
  /** What a 5xx answer says instead of the error's message. */
  safeDetail?: string;
  retryAfterSeconds?: (error: KeyplanError) => number;
}

const problemType = (code: string) => `urn:keyplan:problem:${code}`;

/** The one mapping from domain errors to HTTP answers. */
function mappingFor(error: KeyplanError): Mapping | undefined {
  if (error instanceof ValidationError) return { status: 400, title: 'Invalid request', showDetail: true };
  if (error instanceof NotFoundError) return { status: 404, title: 'Not found', showDetail: true };
  if (error instanceof PayloadTooLargeError) return { status: 413, title: 'Request body too large', showDetail: true };
  if (error instanceof IdempotencyKeyReusedError)
    return { status: 409, title: 'Idempotency key reused with a different request', showDetail: true };
  if (error instanceof CustomerAlreadyRegisteredError)
    return { status: 409, title: 'Customer already registered', showDetail: true };
  if (error instanceof CustomerRevokedError) return { status: 409, title: 'Customer revoked', showDetail: true };
  if (error instanceof CustomerBusyError)
    return {
      status: 409,
      title: 'Another change to this customer is running',
      showDetail: true,
      retryAfterSeconds: () => error.retryAfterSeconds,
    };
  if (error instanceof TierChangeFailedError)
    return {
      status: 502,
      title: 'The tier could not be changed',
      showDetail: false,
      safeDetail: error.repairNeeded
        ? 'The tier change failed and a key could not be put back into its plan; it is recorded for repair.'
        : 'The tier change failed; every key is back in its old plan and the tier is unchanged. Retry later.',
    };
  if (error instanceof RegistrationInProgressError)
    return {
      status: 409,
      title: 'Registration in progress',
      showDetail: true,
      retryAfterSeconds: () => error.retryAfterSeconds,
    };
  if (error instanceof TransientAwsError)
    return {
      status: 503,
      title: 'AWS is busy; retry later',
      showDetail: false,
      safeDetail: 'AWS did not accept the request in time. Progress is kept; retry after the given delay.',
      retryAfterSeconds: () => error.retryAfterSeconds,
    };
  if (error instanceof ProvisioningFailedError)
    return {
      status: 502,
      title: 'The API key could not be provisioned',
      showDetail: false,
      safeDetail:
        'The API key could not be provisioned and has been removed. The registration is FAILED; see its status.',
    };
  if (error instanceof RotationIncompleteError)
    return {
      status: 502,
      title: 'The key could not be rotated',
      showDetail: false,
      safeDetail: 'The rotation did not finish and the current key keeps working. Retry later.',
    };
  if (error instanceof NoShardCapacityError)
    return {
      status: 503,
      title: 'No capacity for new customers',
      showDetail: false,
      safeDetail: 'Every API Gateway shard is full or draining; the operator has been alerted. Retry later.',
      retryAfterSeconds: () => 300,
    };
  if (error instanceof ShardUnavailableError)
    return {
      status: 503,
      title: 'Shard unavailable',
      showDetail: false,
      safeDetail: 'keyplan cannot reach the API Gateway shard of this customer right now. Retry later.',
      retryAfterSeconds: () => 60,
    };
  if (error instanceof UsageUnavailableError)
    return {
      status: 501,
      title: 'Usage data unavailable',
      showDetail: false,
      safeDetail: 'Usage data is unavailable from this AWS endpoint: it does not serve API Gateway usage (GetUsage).',
    };
  return undefined;
}

const INTERNAL_ERROR_DETAIL = 'An internal error occurred. It has been logged; quote the request id when reporting it.';

/** Maps any error to a problem+json response; internals of 5xx answers never leave the process. */
export function problemResponse(error: unknown, requestId?: string): APIGatewayProxyResult {
  const mapping = error instanceof KeyplanError ? mappingFor(error) : undefined;
  const status = mapping?.status ?? 500;
  const problem: Problem = {
    type: mapping && error instanceof KeyplanError ? problemType(error.code) : problemType('internal-error'),
    title: mapping?.title ?? 'Internal error',
    status,
    detail:
      mapping?.showDetail && error instanceof Error
        ? error.message
        : `${mapping?.safeDetail ?? INTERNAL_ERROR_DETAIL}${requestId ? ` (request id ${requestId})` : ''}`,
  };
  if (error instanceof ValidationError) problem.field = error.field;
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE };
  if (mapping?.retryAfterSeconds && error instanceof KeyplanError) {
    headers['retry-after'] = String(mapping.retryAfterSeconds(error));
  }
  return { statusCode: status, headers, body: JSON.stringify(problem) };
}

export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}
