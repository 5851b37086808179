import type { APIGatewayProxyEvent } from 'aws-lambda';
import { PayloadTooLargeError, ValidationError } from '../errors';

/**
 * Far above any real request (a registration is a few hundred bytes); keeps a hostile body from
 * costing parse time. API Gateway (REST) cannot lower its own 10 MB limit, so the functions do.
 */
export const MAX_BODY_BYTES = 8 * 1024;

export function headerValue(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  return undefined;
}

/** Bytes of the body as the client sent it, counted without decoding or copying it. */
export function bodyByteLength(event: Pick<APIGatewayProxyEvent, 'body' | 'isBase64Encoded'>): number {
  if (!event.body) return 0;
  return Buffer.byteLength(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

/** @throws PayloadTooLargeError when the body is over MAX_BODY_BYTES */
export function assertBodyWithinLimit(event: Pick<APIGatewayProxyEvent, 'body' | 'isBase64Encoded'>): void {
  if (bodyByteLength(event) > MAX_BODY_BYTES) throw new PayloadTooLargeError(MAX_BODY_BYTES);
}

/**
 * @throws ValidationError (field `body`) when there is no body or it is not JSON
 * @throws PayloadTooLargeError when it is over MAX_BODY_BYTES (httpHandler refuses such a body
 *   earlier; checked again for routes called on their own)
 */
export function parseJsonBody(event: APIGatewayProxyEvent): unknown {
  if (event.body === null || event.body === undefined || event.body === '') {
    throw new ValidationError('body', 'a JSON body is required');
  }
  assertBodyWithinLimit(event);
  const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new ValidationError('body', 'the body is not valid JSON');
  }
}
