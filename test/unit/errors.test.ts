import { describe, expect, it } from 'vitest';
import {
  AssociationRejectedError,
  CustomerAlreadyRegisteredError,
  CustomerBusyError,
  CustomerRevokedError,
  IdempotencyKeyReusedError,
  isPermanent,
  LeaseLostError,
  NotFoundError,
  PayloadTooLargeError,
  ProvisioningFailedError,
  RegistrationInProgressError,
  RotationIncompleteError,
  TierChangeFailedError,
  TransientAwsError,
  UsageUnavailableError,
  ValidationError,
} from '../../shared/errors';

describe('isPermanent, the one classification of failures', () => {
  it.each([
    ['bad input', new ValidationError('tier', 'unknown tier')],
    ['an unknown customer', new NotFoundError('no customer')],
    ['an idempotency key reused with another payload', new IdempotencyKeyReusedError('reused')],
    ['a customer registered under another id', new CustomerAlreadyRegisteredError('taken')],
    ['a revoked customer', new CustomerRevokedError('revoked')],
    ['a registration that ended FAILED', new ProvisioningFailedError('association-rejected')],
    ['a plan that refuses the key', new AssociationRejectedError('refused')],
    ['an endpoint without usage data', new UsageUnavailableError('no GetUsage')],
    ['a body too large', new PayloadTooLargeError(8192)],
  ])('gives up on %s', (_, error) => {
    expect(error.retryable).toBe(false);
    expect(isPermanent(error)).toBe(true);
  });

  it.each([
    ['AWS throttling or 5xx', new TransientAwsError('throttled', 5)],
    ['another attempt of the registration', new RegistrationInProgressError('in progress', 3)],
    ['another operation on the customer', new CustomerBusyError('busy', 30)],
    ['a lease taken over', new LeaseLostError('lost', 1)],
    ['a rotation handed to the sweep', new RotationIncompleteError('email failed')],
    ['a tier change that failed and was put back', new TierChangeFailedError(false)],
  ])('retries %s', (_, error) => {
    expect(error.retryable).toBe(true);
    expect(isPermanent(error)).toBe(false);
  });

  it('retries what it does not know: an unexpected error is left to the queue, the sweep or an operator', () => {
    expect(isPermanent(new Error('boom'))).toBe(false);
    expect(isPermanent(new SyntaxError('bad json'))).toBe(false);
    expect(isPermanent('a string')).toBe(false);
  });

  it('knows a throttled call did not happen, and a 5xx may have', () => {
    expect(new TransientAwsError('throttled', 5, { notApplied: true }).notApplied).toBe(true);
    expect(new TransientAwsError('5xx', 5).notApplied).toBe(false);
  });
});
