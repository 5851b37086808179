import { describe, expect, it } from 'vitest';
import { describeFailure, EXIT, UsageError } from '../../cli/failures';
import { ImportFileError } from '../../cli/import-file';
import { ConfigError } from '../../shared/config';
import {
  AssociationRejectedError,
  CustomerAlreadyRegisteredError,
  CustomerBusyError,
  CustomerRevokedError,
  IdempotencyKeyReusedError,
  NotFoundError,
  ProvisioningFailedError,
  RegistrationInProgressError,
  RotationIncompleteError,
  TierChangeFailedError,
  TransientAwsError,
  UsageUnavailableError,
  ValidationError,
} from '../../shared/errors';
import { awsError } from '../support/provisioning-fakes';

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED' });

describe('describeFailure (the one error mapping of the CLI)', () => {
  it.each([
    ['a usage error', new UsageError('no FILE given'), EXIT.usage, 'usage', 'no FILE given'],
    ['a configuration error', new ConfigError('TIER_MAP is not set'), EXIT.usage, 'configuration', 'TIER_MAP is not set'],
    ['an unreadable import file', new ImportFileError('a.csv: no such file'), EXIT.usage, 'import-file', 'a.csv: no such file'],
    ['invalid input', new ValidationError('tier', 'tier must be one of: free'), EXIT.usage, 'validation-failed', 'tier must be one of: free'],
    ['an unknown customer', new NotFoundError('no customer c-1'), EXIT.notFound, 'not-found', 'no customer c-1'],
    [
      'a busy customer',
      new CustomerBusyError('another change to customer c-1 is running', 12),
      EXIT.retryLater,
      'customer-busy',
      'another change to customer c-1 is running; run the same command again in 12 s',
    ],
    [
      'a registration in progress',
      new RegistrationInProgressError('registration r-1 is being provisioned', 30),
      EXIT.retryLater,
      'registration-in-progress',
      'registration r-1 is being provisioned; run the same command again in 30 s',
    ],
    [
      'AWS throttling after the retries',
      new TransientAwsError('API Gateway is busy', 2, { cause: awsError('TooManyRequestsException', 429) }),
      EXIT.retryLater,
      'service-unavailable',
      'AWS kept throttling or failing (TooManyRequestsException: TooManyRequestsException (simulated)); progress is kept: run the same command again in 2 s',
    ],
    [
      'a revoked customer',
      new CustomerRevokedError('customer c-1 was revoked; register again with "reactivate": true and a new Idempotency-Key'),
      EXIT.failed,
      'customer-revoked',
      'customer c-1 was revoked; to re-activate it, provision again with --reactivate and a new --idempotency-key',
    ],
    ['a customer registered elsewhere', new CustomerAlreadyRegisteredError('customer c-1 is registered under another id'), EXIT.failed, 'customer-already-registered', 'customer c-1 is registered under another id'],
    ['an idempotency key reused', new IdempotencyKeyReusedError('registration r-1 was made with another payload'), EXIT.failed, 'idempotency-key-reused', 'registration r-1 was made with another payload'],
    [
      'a failed registration',
      new ProvisioningFailedError('association-rejected'),
      EXIT.failed,
      'provisioning-failed',
      'provisioning failed (association-rejected): the key was removed and the registration is FAILED',
    ],
    [
      'a tier change put back',
      new TierChangeFailedError(false, { cause: awsError('NotFoundException', 404) }),
      EXIT.failed,
      'tier-change-failed',
      'the tier change failed: every key is back in its old plan and the tier is unchanged; cause: NotFoundException: NotFoundException (simulated)',
    ],
    [
      'a tier change left for repair',
      new TierChangeFailedError(true),
      EXIT.failed,
      'tier-change-failed',
      'the tier change failed: a key could not be put back into its plan and is recorded for repair (keyplan reconcile repairs it); cause: unknown',
    ],
    [
      'an incomplete rotation',
      new RotationIncompleteError('the new key could not be emailed', { cause: awsError('MessageRejected') }),
      EXIT.failed,
      'rotation-incomplete',
      'the new key could not be emailed; the current key keeps working: run the same command again later (cause: MessageRejected: MessageRejected (simulated))',
    ],
    [
      'usage the endpoint does not serve',
      new UsageUnavailableError('GetUsage answered 404'),
      EXIT.failed,
      'usage-unavailable',
      'usage data is unavailable from this AWS endpoint: it does not serve API Gateway usage (GetUsage); the local emulator never does',
    ],
    ['any other keyplan error', new AssociationRejectedError('the key is in another plan'), EXIT.failed, 'association-rejected', 'the key is in another plan'],
    [
      'missing AWS credentials',
      Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      EXIT.usage,
      'aws-credentials',
      'no AWS credentials: Could not load credentials from any providers',
    ],
    ['access denied', awsError('AccessDeniedException', 400), EXIT.usage, 'aws-access-denied', 'AWS refused access: AccessDeniedException: AccessDeniedException (simulated)'],
    ['an expired token', awsError('ExpiredTokenException', 400), EXIT.usage, 'aws-access-denied', 'AWS refused access: ExpiredTokenException: ExpiredTokenException (simulated)'],
    ['any 403', awsError('SomethingForbidden', 403), EXIT.usage, 'aws-access-denied', 'AWS refused access: SomethingForbidden: SomethingForbidden (simulated)'],
    [
      'a missing table',
      Object.assign(awsError('ResourceNotFoundException'), { message: 'Requested resource not found' }),
      EXIT.usage,
      'aws-resource-not-found',
      'Requested resource not found: does the stack exist in this account and region?',
    ],
    ['a refused connection', refused, EXIT.usage, 'aws-unreachable', 'cannot reach AWS (ECONNREFUSED)'],
    [
      'a refused connection the table adapter called transient',
      new TransientAwsError('DynamoDB is unavailable: Error', 2, { cause: refused }),
      EXIT.usage,
      'aws-unreachable',
      'cannot reach AWS (ECONNREFUSED)',
    ],
    ['anything else', new TypeError('x is not a function'), EXIT.failed, 'unexpected-error', 'unexpected error: TypeError: x is not a function (--verbose logs the details)'],
    ['a thrown string', 'boom', EXIT.failed, 'unexpected-error', 'unexpected error: boom (--verbose logs the details)'],
  ])('maps %s to exit %i, code %s', (_what, error, exitCode, code, message) => {
    // Act
    const failure = describeFailure(error);

    // Assess
    expect(failure).toMatchObject({ exitCode, code, message });
  });

  it('keeps the field of invalid input and the wait of a busy customer for --json', () => {
    // Act
    const invalid = describeFailure(new ValidationError('from', 'from must be a date YYYY-MM-DD'));
    const busy = describeFailure(new CustomerBusyError('busy', 9));

    // Assess
    expect(invalid.field).toBe('from');
    expect(busy.retryAfterSeconds).toBe(9);
  });

  it('adds the hint for the local stack when AWS cannot be reached', () => {
    // Act
    const failure = describeFailure(refused, { unreachableHint: 'is `npm start` running?' });

    // Assess
    expect(failure.message).toBe('cannot reach AWS (ECONNREFUSED): is `npm start` running?');
  });

  it('puts a message of several lines on one line', () => {
    // Act
    const failure = describeFailure(new ConfigError('first\n  second'));

    // Assess
    expect(failure.message).toBe('first second');
  });
});
