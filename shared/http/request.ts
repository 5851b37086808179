import type { APIGatewayProxyEvent } from 'aws-lambda';
import { ValidationError } from '../errors';

/** Far above any real registration; keeps a hostile body from costing parse time. */
export const MAX_BODY_BYTES = 8 * 1024;

export function headerValue(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  return undefined;
}

export function parseJsonBody(event: APIGatewayProxyEvent): unknown {
  if (event.body === null || event.body === undefined || event.body === '') {
    throw new ValidationError('body', 'a JSON body is required');
  }
  const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(raw, 'utf8') > MAX_BODY_BYTES) {
    throw new ValidationError('body', `the body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new ValidationError('body', 'the body is not valid JSON');
  }
}
