import { webcrypto } from 'node:crypto';

/**
 * The values of the API keys keyplan makes itself (DESIGN §8): `kp_<shard>_<random>`.
 *
 * - The prefix names the shard, so one public domain can route a request to the shard that holds
 *   its key at the edge (infra/edge/route-by-key.js) and a secret scanner can recognise a leaked
 *   key by its shape.
 * - The random part is 24 bytes (192 bits) from the operating system's CSPRNG, written in base62:
 *   API Gateway documents only a length for a key value (20 to 128 characters) and third-party
 *   tooling describes it as alphanumeric, so the random part uses nothing but [0-9A-Za-z]. The two
 *   `_` separators are the only other characters.
 * - Fixed width: 33 base62 digits hold any 192-bit number (62^33 > 2^192 > 62^32), so every value
 *   of one shard has the same length and the edge can check the exact shape.
 *
 * The value is never logged or stored: the table keeps only its fingerprint (ApiKeySecret).
 */

/** A shard id: the prefix of its key values, so short and plain. */
export const SHARD_ID_PATTERN = /^[a-z0-9]{1,12}$/;

/** Bytes of randomness in a key value: 192 bits, above the 128 the design asks for. */
export const KEY_RANDOM_BYTES = 24;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Base62 digits of KEY_RANDOM_BYTES bytes. */
const RANDOM_LENGTH = 33;

/** The exact shape of a key value; group 1 is the shard id. The edge function checks the same. */
const KEY_VALUE_PATTERN = new RegExp(`^kp_([a-z0-9]{1,12})_[0-9A-Za-z]{${RANDOM_LENGTH}}$`);

/**
 * A new key value for the shard `shardId`: `kp_<shardId>_` and 33 base62 characters of 192 random
 * bits, 38 to 49 characters in all (API Gateway takes 20 to 128). A plain string, because its one
 * use is CreateApiKey's `value`; what API Gateway answers is wrapped in an ApiKeySecret as before.
 *
 * @throws RangeError when `shardId` is not a shard id (1 to 12 lowercase letters or digits).
 */
export function newKeyValue(shardId: string): string {
  if (!SHARD_ID_PATTERN.test(shardId)) {
    throw new RangeError(`"${shardId}" is not a shard id: 1 to 12 lowercase letters or digits`);
  }
  return `kp_${shardId}_${base62(webcrypto.getRandomValues(new Uint8Array(KEY_RANDOM_BYTES)))}`;
}

/**
 * The shard a key value names, or undefined for anything not of the exact shape of newKeyValue's
 * values (a key API Gateway generated, a mistyped or truncated value). It says nothing about
 * whether the key exists: only API Gateway knows that.
 */
export function shardOfKeyValue(value: string): string | undefined {
  return KEY_VALUE_PATTERN.exec(value)?.[1];
}

/** A key value of keyplan's shape anywhere in a text (a secret scanner's view of it). */
const KEY_VALUE_INSIDE = new RegExp(`kp_[a-z0-9]{1,12}_[0-9A-Za-z]{${RANDOM_LENGTH}}`);

/**
 * Whether `text` holds something of a key value's shape: what must never leave keyplan in a log
 * line or an event. API Gateway's own generated values have no shape to find; keyplan makes its own.
 */
export function holdsKeyValue(text: string): boolean {
  return KEY_VALUE_INSIDE.test(text);
}

/** The bytes as one big-endian number in RANDOM_LENGTH base62 digits, zero-padded. */
function base62(bytes: Uint8Array): string {
  let n = 0n;
  for (const byte of bytes) n = (n << 8n) | BigInt(byte);
  let digits = '';
  for (let i = 0; i < RANDOM_LENGTH; i++) {
    digits = ALPHABET.charAt(Number(n % 62n)) + digits;
    n /= 62n;
  }
  return digits;
}
