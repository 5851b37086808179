import { awsErrorName } from '../shared/aws/aws-errors';
import { ConfigError } from '../shared/config';
import {
  CustomerBusyError,
  CustomerRevokedError,
  KeyplanError,
  NotFoundError,
  ProvisioningFailedError,
  RegistrationInProgressError,
  RotationIncompleteError,
  TierChangeFailedError,
  TransientAwsError,
  UsageUnavailableError,
  ValidationError,
} from '../shared/errors';
import { ImportFileError } from './import-file';

/** The exit codes of every command; GLOBAL_HELP in command.ts documents them. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, retryLater: 4 } as const;

/** The command line itself is wrong: a missing argument, an unknown option or command. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Lambda throttled an invoke of a deployed function: a scheduled job runs one at a time
 * (reservedConcurrency), so usually a run is on.
 */
export class FunctionBusyError extends Error {
  override readonly name = 'FunctionBusyError';
  constructor(
    readonly functionName: string,
    reason: string | undefined,
    options?: ErrorOptions,
  ) {
    super(
      reason === 'ReservedFunctionConcurrentInvocationLimitExceeded' || reason === undefined
        ? `${functionName} is running already (one run at a time)`
        : `Lambda throttled ${functionName} (${reason})`,
      options,
    );
  }
}

/** A deployed function ran and failed: what its answer said. */
export class FunctionFailedError extends Error {
  override readonly name = 'FunctionFailedError';
  constructor(
    readonly functionName: string,
    readonly errorType: string,
    readonly errorMessage: string,
  ) {
    super(`${functionName} failed: ${errorType}: ${errorMessage}`);
  }
}

/** What the operator is told about an error: one line on stderr, and the --json error object. */
export interface Failure {
  exitCode: number;
  /** Stable and machine-readable: keyplan's problem codes, or the CLI's own (usage, aws-*, ...). */
  code: string;
  message: string;
  field?: string;
  retryAfterSeconds?: number;
}

export interface FailureContext {
  /** Added when AWS cannot be reached, e.g. "is `npm start` running?" for the local stack. */
  unreachableHint?: string | undefined;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH']);
const ACCESS_DENIED =
  /^(AccessDenied.*|UnrecognizedClientException|InvalidClientTokenId|ExpiredToken.*|InvalidSignatureException|SignatureDoesNotMatch|UnauthorizedOperation|AuthFailure|MissingAuthenticationToken.*)$/;

/**
 * The one mapping from errors to what the operator sees and the exit code; the CLI's counterpart
 * of shared/http/problem.ts. The operator runs with their own credentials, so unlike an HTTP 5xx
 * the cause of a failure is shown (an AWS error's name and message never carry a key value).
 */
export function describeFailure(error: unknown, context: FailureContext = {}): Failure {
  if (error instanceof UsageError) return { exitCode: EXIT.usage, code: 'usage', message: oneLine(error.message) };
  if (error instanceof ConfigError) return { exitCode: EXIT.usage, code: 'configuration', message: oneLine(error.message) };
  if (error instanceof ImportFileError) return { exitCode: EXIT.usage, code: 'import-file', message: oneLine(error.message) };
  if (error instanceof KeyplanError) return keyplanFailure(error, context);
  if (error instanceof FunctionBusyError) {
    return { exitCode: EXIT.retryLater, code: 'function-busy', message: `${error.message}: run the same command again later` };
  }
  if (error instanceof FunctionFailedError) {
    return { exitCode: EXIT.failed, code: 'function-failed', message: `${oneLine(error.message)} (its logs have the details)` };
  }
  return awsFailure(error, context) ?? unexpected(error);
}

function keyplanFailure(error: KeyplanError, context: FailureContext): Failure {
  const failed = (message: string): Failure => ({ exitCode: EXIT.failed, code: error.code, message: oneLine(message) });
  if (error instanceof ValidationError) {
    return { exitCode: EXIT.usage, code: error.code, message: oneLine(error.message), field: error.field };
  }
  if (error instanceof NotFoundError) return { exitCode: EXIT.notFound, code: error.code, message: oneLine(error.message) };
  if (error instanceof CustomerBusyError || error instanceof RegistrationInProgressError) {
    return {
      exitCode: EXIT.retryLater,
      code: error.code,
      message: `${oneLine(error.message)}; run the same command again in ${error.retryAfterSeconds} s`,
      retryAfterSeconds: error.retryAfterSeconds,
    };
  }
  if (error instanceof TransientAwsError) {
    // A refused connection reaches the use cases as a transient error too; it is no reason to wait.
    if (isNetworkError(error.cause)) return unreachable(error.cause, context);
    return {
      exitCode: EXIT.retryLater,
      code: error.code,
      message: `AWS kept throttling or failing (${describeCause(error.cause)}); progress is kept: run the same command again in ${error.retryAfterSeconds} s`,
      retryAfterSeconds: error.retryAfterSeconds,
    };
  }
  if (error instanceof CustomerRevokedError) {
    // The use case's message speaks HTTP (body field, header); the first clause names the customer.
    const [what] = error.message.split(';');
    return failed(`${what}; to re-activate it, provision again with --reactivate and a new --idempotency-key`);
  }
  if (error instanceof ProvisioningFailedError) {
    return failed(`provisioning failed (${error.reason}): the key was removed and the registration is FAILED`);
  }
  if (error instanceof TierChangeFailedError) {
    const outcome = error.repairNeeded
      ? 'a key could not be put back into its plan and is recorded for repair (keyplan reconcile repairs it)'
      : 'every key is back in its old plan and the tier is unchanged';
    return failed(`the tier change failed: ${outcome}; cause: ${describeCause(error.cause)}`);
  }
  if (error instanceof RotationIncompleteError) {
    return failed(`${error.message}; the current key keeps working: run the same command again later (cause: ${describeCause(error.cause)})`);
  }
  if (error instanceof UsageUnavailableError) {
    return failed('usage data is unavailable from this AWS endpoint: it does not serve API Gateway usage (GetUsage); the local emulator never does');
  }
  return failed(error.message);
}

function awsFailure(error: unknown, context: FailureContext): Failure | undefined {
  const name = awsErrorName(error);
  const message = error instanceof Error ? oneLine(error.message) : '';
  if (name === 'CredentialsProviderError') {
    return { exitCode: EXIT.usage, code: 'aws-credentials', message: `no AWS credentials: ${message}` };
  }
  if (ACCESS_DENIED.test(name) || (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 403) {
    return { exitCode: EXIT.usage, code: 'aws-access-denied', message: `AWS refused access: ${name}: ${message}` };
  }
  if (name === 'ResourceNotFoundException') {
    return {
      exitCode: EXIT.usage,
      code: 'aws-resource-not-found',
      message: `${message}: does the stack exist in this account and region?`,
    };
  }
  if (isNetworkError(error)) return unreachable(error, context);
  return undefined;
}

function unreachable(error: unknown, context: FailureContext): Failure {
  const hint = context.unreachableHint ? `: ${context.unreachableHint}` : '';
  return { exitCode: EXIT.usage, code: 'aws-unreachable', message: `cannot reach AWS (${describeCause(error)})${hint}` };
}

function unexpected(error: unknown): Failure {
  return {
    exitCode: EXIT.failed,
    code: 'unexpected-error',
    message: `unexpected error: ${describeCause(error)} (--verbose logs the details)`,
  };
}

function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/** "Name: message" (or the network code) of an error, on one line. */
function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return cause === undefined ? 'unknown' : oneLine(String(cause));
  const code = (cause as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
  const message = oneLine(cause.message);
  return message && message !== cause.name ? `${cause.name}: ${message}` : cause.name;
}

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim();
