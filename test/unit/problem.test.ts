import { describe, expect, it } from 'vitest';
import * as errors from '../../shared/errors';
import {
  AssociationRejectedError,
  CustomerBusyError,
  IdempotencyKeyReusedError,
  LeaseLostError,
  NoShardCapacityError,
  TierChangeFailedError,
  UnknownShardError,
  PayloadTooLargeError,
  ProvisioningFailedError,
  RegistrationInProgressError,
  TransientAwsError,
  ValidationError,
} from '../../shared/errors';
import { problemResponse } from '../../shared/http/problem';

const body = (response: { body: string }) => JSON.parse(response.body) as Record<string, unknown>;

describe('problemResponse', () => {
  it('names the field of a validation error', () => {
    const response = problemResponse(new ValidationError('email', 'email: invalid'));

    expect(response.statusCode).toBe(400);
    expect(body(response)).toEqual({
      type: 'urn:keyplan:problem:validation-failed',
      title: 'Invalid request',
      status: 400,
      detail: 'email: invalid',
      field: 'email',
    });
  });

  it('answers 409 idempotency-key-reused', () => {
    const response = problemResponse(new IdempotencyKeyReusedError('reused'));

    expect(response.statusCode).toBe(409);
    expect(body(response).type).toBe('urn:keyplan:problem:idempotency-key-reused');
  });

  it('answers 413 payload-too-large with the limit', () => {
    const response = problemResponse(new PayloadTooLargeError(8192));

    expect(response.statusCode).toBe(413);
    expect(body(response)).toEqual({
      type: 'urn:keyplan:problem:payload-too-large',
      title: 'Request body too large',
      status: 413,
      detail: 'the body is larger than 8192 bytes',
    });
  });

  it('tells a caller in a race when to retry', () => {
    const response = problemResponse(new RegistrationInProgressError('busy', 7));

    expect(response.statusCode).toBe(409);
    expect(response.headers?.['retry-after']).toBe('7');
  });

  it('answers 503 with Retry-After and without the AWS error when AWS keeps throttling', () => {
    const cause = new Error('TooManyRequestsException: Rate exceeded for arn:aws:apigateway:secret');
    const response = problemResponse(new TransientAwsError('CreateApiKey failed: TooManyRequestsException', 4, { cause }));

    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toBe('4');
    expect(response.body).not.toMatch(/TooManyRequests|CreateApiKey|arn:/);
  });

  it('answers 502 for a failed provisioning without internals', () => {
    const response = problemResponse(
      new ProvisioningFailedError('association-rejected', { cause: new Error('NotFoundException: Invalid Usage Plan ID') }),
      'req-9',
    );

    expect(response.statusCode).toBe(502);
    expect(body(response)).toMatchObject({ type: 'urn:keyplan:problem:provisioning-failed', status: 502 });
    expect(response.body).not.toContain('NotFoundException');
    expect(response.body).toContain('req-9');
  });

  it('answers 500 for anything unexpected, hiding its message', () => {
    const response = problemResponse(new TypeError("Cannot read properties of undefined (reading 'id')"));

    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('Cannot read');
  });

  it('answers every domain error by its code: only the two that mean a broken deployment are internal', () => {
    // Every KeyplanError class of errors.ts, built with arguments of the right types.
    const classes = Object.values(errors).filter(
      (value) => typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof errors.KeyplanError,
    ) as unknown as (new (...args: unknown[]) => errors.KeyplanError)[];
    const built = classes.map((ErrorClass) => {
        const args: Record<string, unknown[]> = {
          ValidationError: ['email', 'email: invalid'],
          RegistrationInProgressError: ['busy', 3],
          CustomerBusyError: ['busy', 3],
          LeaseLostError: ['lost', 3],
          TransientAwsError: ['throttled', 3],
          TierChangeFailedError: [false],
          PayloadTooLargeError: [8192],
          ShardUnavailableError: ['eu1'],
          UnknownShardError: ['eu9'],
          ProvisioningFailedError: ['association-rejected'],
        };
        return new ErrorClass(...(args[ErrorClass.name] ?? ['message']));
      });
    expect(built.length).toBeGreaterThanOrEqual(17);

    const internal = built.filter((error) => problemResponse(error).statusCode === 500).map((error) => error.name);
    expect(internal.sort()).toEqual(['AssociationRejectedError', 'UnknownShardError']);
    for (const error of built) {
      expect(body(problemResponse(error)).type).toBe(
        internal.includes(error.name) ? 'urn:keyplan:problem:internal-error' : `urn:keyplan:problem:${error.code}`,
      );
    }
  });

  it('answers a lease lost as the busy customer it is, with its Retry-After', () => {
    const response = problemResponse(new LeaseLostError('taken over', 12));

    expect(response.statusCode).toBe(409);
    expect(response.headers?.['retry-after']).toBe('12');
    expect(body(response).type).toBe('urn:keyplan:problem:customer-busy');
    expect(problemResponse(new CustomerBusyError('busy', 4)).headers?.['retry-after']).toBe('4');
  });

  it('answers fixed Retry-After for a full deployment and says whether a failed tier change needs repair', () => {
    expect(problemResponse(new NoShardCapacityError('full')).headers?.['retry-after']).toBe('300');
    const repair = body(problemResponse(new TierChangeFailedError(true)));
    const restored = body(problemResponse(new TierChangeFailedError(false)));

    expect(repair.detail).toMatch(/recorded for repair/);
    expect(restored.detail).toMatch(/every key is back in its old plan/);
    expect(problemResponse(new AssociationRejectedError('rejected')).headers?.['retry-after']).toBeUndefined();
    expect(problemResponse(new UnknownShardError('eu9')).statusCode).toBe(500);
  });
});
