import { describe, expect, it } from 'vitest';
import {
  IdempotencyKeyReusedError,
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
});
