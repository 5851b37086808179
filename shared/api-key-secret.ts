import { inspect } from 'node:util';
import { createHash } from 'node:crypto';

const REDACTED = '[api-key-value]';

/**
 * An API key value. It is readable only through `reveal()`, which the email step alone calls;
 * serialising it (JSON, a logger, `console.log`, string interpolation) yields a placeholder, so a
 * careless log line cannot leak a key.
 */
export class ApiKeySecret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  /** First 8 hex chars of SHA-256 of the value: enough to tell keys apart, useless to an attacker. */
  fingerprint(): string {
    return createHash('sha256').update(this.#value).digest('hex').slice(0, 8);
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
