import type { APIGatewayProxyResult } from 'aws-lambda';
import { KeyplanError, ValidationError } from '../errors';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** RFC 9457 problem details. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  field?: string;
}

/** What an error's problem says; the error's own message only where `showDetail`. */
interface Answer {
  status: number;
  title: string;
  /** Whether the error's own message is safe to show; 5xx messages never are. */
  showDetail?: true;
  /** What a 5xx answer says instead of the error's message. */
  safeDetail?: string | ((error: { repairNeeded?: boolean }) => string);
  /** Retry-After: the error's own `retryAfterSeconds`, or a fixed number of seconds. */
  retryAfter?: 'own' | number;
}

const problemType = (code: string) => `urn:keyplan:problem:${code}`;

/**
 * The one mapping from domain errors to HTTP answers, by the error's code (errors.ts). Keyed by
 * code rather than tested with instanceof, so that a function's bundle holds only the error
 * classes its own code can throw (a subclass answers as its parent's code).
 */
const ANSWERS: Readonly<Record<string, Answer>> = {
  'validation-failed': { status: 400, title: 'Invalid request', showDetail: true },
  'not-found': { status: 404, title: 'Not found', showDetail: true },
  'payload-too-large': { status: 413, title: 'Request body too large', showDetail: true },
  'idempotency-key-reused': { status: 409, title: 'Idempotency key reused with a different request', showDetail: true },
  'customer-already-registered': { status: 409, title: 'Customer already registered', showDetail: true },
  'customer-revoked': { status: 409, title: 'Customer revoked', showDetail: true },
  'customer-busy': { status: 409, title: 'Another change to this customer is running', showDetail: true, retryAfter: 'own' },
  'tier-change-failed': {
    status: 502,
    title: 'The tier could not be changed',
    safeDetail: (error) =>
      error.repairNeeded
        ? 'The tier change failed and a key could not be put back into its plan; it is recorded for repair.'
        : 'The tier change failed; every key is back in its old plan and the tier is unchanged. Retry later.',
  },
  'registration-in-progress': { status: 409, title: 'Registration in progress', showDetail: true, retryAfter: 'own' },
  'service-unavailable': {
    status: 503,
    title: 'AWS is busy; retry later',
    safeDetail: 'AWS did not accept the request in time. Progress is kept; retry after the given delay.',
    retryAfter: 'own',
  },
  'provisioning-failed': {
    status: 502,
    title: 'The API key could not be provisioned',
    safeDetail: 'The API key could not be provisioned and has been removed. The registration is FAILED; see its status.',
  },
  'rotation-incomplete': {
    status: 502,
    title: 'The key could not be rotated',
    safeDetail: 'The rotation did not finish and the current key keeps working. Retry later.',
  },
  'no-shard-capacity': {
    status: 503,
    title: 'No capacity for new customers',
    safeDetail: 'Every API Gateway shard is full or draining; the operator has been alerted. Retry later.',
    retryAfter: 300,
  },
  'shard-unavailable': {
    status: 503,
    title: 'Shard unavailable',
    safeDetail: 'keyplan cannot reach the API Gateway shard of this customer right now. Retry later.',
    retryAfter: 60,
  },
  'usage-unavailable': {
    status: 501,
    title: 'Usage data unavailable',
    safeDetail: 'Usage data is unavailable from this AWS endpoint: it does not serve API Gateway usage (GetUsage).',
  },
};

const INTERNAL_ERROR_DETAIL = 'An internal error occurred. It has been logged; quote the request id when reporting it.';

/** Maps any error to a problem+json response; internals of 5xx answers never leave the process. */
export function problemResponse(error: unknown, requestId?: string): APIGatewayProxyResult {
  const known = error instanceof KeyplanError && Object.hasOwn(ANSWERS, error.code) ? error : undefined;
  const answer = known && ANSWERS[known.code];
  const status = answer?.status ?? 500;
  const safeDetail = typeof answer?.safeDetail === 'function' ? answer.safeDetail(error as object) : answer?.safeDetail;
  const problem: Problem = {
    type: problemType(known?.code ?? 'internal-error'),
    title: answer?.title ?? 'Internal error',
    status,
    detail: answer?.showDetail && known ? known.message : `${safeDetail ?? INTERNAL_ERROR_DETAIL}${requestId ? ` (request id ${requestId})` : ''}`,
  };
  if (error instanceof ValidationError) problem.field = error.field;
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE };
  const retryAfter = answer?.retryAfter === 'own' ? (known as { retryAfterSeconds?: number }).retryAfterSeconds : answer?.retryAfter;
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  return { statusCode: status, headers, body: JSON.stringify(problem) };
}

export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}
