import { webcrypto } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import {
  holdsKeyValue,
  KEY_RANDOM_BYTES,
  newKeyValue,
  shardOfKeyValue,
} from '../../shared/core/key-value';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const randomPart = (value: string) => value.slice(value.lastIndexOf('_') + 1);

describe('newKeyValue', () => {
  it('makes kp_<shard>_ and 33 base62 characters, within what API Gateway accepts', () => {
    for (const shard of ['a', 'eu1', 'abcdefghij12']) {
      const value = newKeyValue(shard);

      expect(value).toMatch(new RegExp(`^kp_${shard}_[0-9A-Za-z]{33}$`));
      expect(value.length).toBe(3 + shard.length + 1 + 33);
      // API Gateway: a key value is 20 to 128 characters.
      expect(value.length).toBeGreaterThanOrEqual(20);
      expect(value.length).toBeLessThanOrEqual(128);
    }
  });

  it('writes the random part in exactly as many base62 digits as 24 bytes need', () => {
    // 33 digits hold every 192-bit number, 32 do not: the width is fixed, and nothing is lost.
    expect(62n ** 33n).toBeGreaterThan(2n ** BigInt(KEY_RANDOM_BYTES * 8));
    expect(62n ** 32n).toBeLessThan(2n ** BigInt(KEY_RANDOM_BYTES * 8));
    expect(KEY_RANDOM_BYTES * 8).toBeGreaterThanOrEqual(128);
  });

  it('takes its randomness from node:crypto, 24 bytes per value', () => {
    const getRandomValues = vi.spyOn(webcrypto, 'getRandomValues');

    newKeyValue('eu1');

    expect(getRandomValues).toHaveBeenCalledTimes(1);
    const [buffer] = getRandomValues.mock.calls[0]!;
    expect(buffer).toBeInstanceOf(Uint8Array);
    expect((buffer as Uint8Array).byteLength).toBeGreaterThanOrEqual(16);
    expect((buffer as Uint8Array).byteLength).toBe(KEY_RANDOM_BYTES);
  });

  it('encodes exactly the bytes it drew, as one big-endian number', () => {
    const draw = (bytes: number[]) =>
      vi.spyOn(webcrypto, 'getRandomValues').mockImplementationOnce((array) => {
        (array as Uint8Array).set(bytes);
        return array;
      });
    const counting = Array.from({ length: 24 }, (_, i) => i);

    draw(new Array<number>(24).fill(0));
    const zeros = newKeyValue('eu1');
    draw(new Array<number>(24).fill(0xff));
    const ones = newKeyValue('eu1');
    draw(counting);
    const ascending = newKeyValue('eu1');

    expect(randomPart(zeros)).toBe('0'.repeat(33));
    expect(fromBase62(randomPart(ones))).toBe(2n ** 192n - 1n);
    expect(fromBase62(randomPart(ascending))).toBe(BigInt(`0x${Buffer.from(counting).toString('hex')}`));
  });

  it('never repeats a value', () => {
    const values = new Set(Array.from({ length: 20_000 }, () => newKeyValue('eu1')));

    expect(values.size).toBe(20_000);
  });

  it('uses the whole base62 alphabet, each character about equally often', () => {
    // Over 10,000 values: 330,000 digits, about 5,300 of each character. The first digit of a
    // 192-bit number in 33 base62 digits is only ever 0, 1 or 2 (2^192 < 3 * 62^32), so the
    // frequency check leaves it out; the set of characters includes it.
    const values = Array.from({ length: 10_000 }, () => randomPart(newKeyValue('eu1')));
    const counts = new Map<string, number>();
    for (const value of values) for (const char of value.slice(1)) counts.set(char, (counts.get(char) ?? 0) + 1);
    const seen = new Set(values.join(''));

    expect([...seen].sort().join('')).toBe([...BASE62].sort().join(''));
    const expected = (10_000 * 32) / 62;
    for (const char of BASE62) {
      // Ten standard deviations of a binomial count either side: a real bias fails, chance does not.
      expect(Math.abs(counts.get(char)! - expected)).toBeLessThan(10 * Math.sqrt(expected));
    }
    expect(new Set(values.map((value) => value[0])).size).toBeLessThanOrEqual(3);
  });

  it.each(['', 'EU1', 'eu-1', 'eu_1', 'abcdefghij123', ' eu1', 'é'])('refuses a shard id that is none: %j', (shard) => {
    expect(() => newKeyValue(shard)).toThrow(RangeError);
    expect(() => newKeyValue(shard)).toThrow(/is not a shard id/);
  });
});

describe('shardOfKeyValue', () => {
  it('reads the shard of every value newKeyValue makes', () => {
    for (const shard of ['a', 'eu1', 'us2', 'abcdefghij12']) {
      expect(shardOfKeyValue(newKeyValue(shard))).toBe(shard);
    }
  });

  it.each([
    ['a key API Gateway generated', 'Zq3vR8sT1uW4xY7zA0bC2dE5fG9hJ6kLmN0pQ2rS'],
    ['no prefix', `eu1_${'a'.repeat(33)}`],
    ['another prefix', `kq_eu1_${'a'.repeat(33)}`],
    ['an upper-case prefix', `KP_eu1_${'a'.repeat(33)}`],
    ['an upper-case shard', `kp_EU1_${'a'.repeat(33)}`],
    ['an empty shard', `kp__${'a'.repeat(33)}`],
    ['a shard id too long', `kp_abcdefghij123_${'a'.repeat(33)}`],
    ['a random part one short', `kp_eu1_${'a'.repeat(32)}`],
    ['a random part one long', `kp_eu1_${'a'.repeat(34)}`],
    ['a character outside base62', `kp_eu1_${'a'.repeat(32)}-`],
    ['a third separator', `kp_eu1_x_${'a'.repeat(33)}`],
    ['surrounding space', ` kp_eu1_${'a'.repeat(33)}`],
    ['a trailing newline', `kp_eu1_${'a'.repeat(33)}\n`],
    ['nothing', ''],
  ])('gives no shard for %s', (_what, value) => {
    expect(shardOfKeyValue(value)).toBeUndefined();
  });
});

describe('holdsKeyValue', () => {
  it('finds a key value anywhere in a text, as a secret scanner would', () => {
    const value = newKeyValue('west');

    expect(holdsKeyValue(value)).toBe(true);
    expect(holdsKeyValue(JSON.stringify({ note: `the key is ${value}.` }))).toBe(true);
  });

  it('finds nothing in ids, fingerprints or a value cut short', () => {
    const value = newKeyValue('home');

    expect(holdsKeyValue(JSON.stringify({ keyId: 'a1b2c3d4e5', fingerprint: '925ef2cc', shard: 'home' }))).toBe(false);
    expect(holdsKeyValue(value.slice(0, -1))).toBe(false);
  });
});

/** Reads base62 digits back into a number: the inverse of the encoding, written the other way round. */
function fromBase62(digits: string): bigint {
  return [...digits].reduce((n, char) => n * 62n + BigInt(BASE62.indexOf(char)), 0n);
}
