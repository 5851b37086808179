import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ApiKeySecret } from '../../shared/api-key-secret';
import { buildKeyEmail, buildRetirementReminder } from '../../shared/core/key-email';

const secret = new ApiKeySecret('Zq3vR8sT1uW4xY7zA0bC2dE5fG9hJ6kL');

describe('buildKeyEmail', () => {
  it('escapes the customer name in HTML and keeps the subject constant', () => {
    const email = buildKeyEmail({
      to: 'ada@example.com',
      name: '<script>alert(1)</script>',
      tier: 'pro',
      secret,
      limits: {},
    });

    expect(email.html).not.toContain('<script>');
    expect(email.html).toContain('&#60;script&#62;');
    expect(email.subject).toBe('Your API key');
    expect(email.text).toContain('Rate limit: none');
  });
});

describe('the recipient of key emails', () => {
  // Registration refuses these; the builders refuse them again, so an address that reached the
  // table some other way can never add a header or a recipient.
  it.each([
    'ada@example.com\r\nBcc: eve@evil.test',
    'ada@example.com, eve@evil.test',
    'Ada <ada@example.com>',
    'ada@example.com\n',
    '',
  ])('is refused when it is not one plain address, with an error that does not repeat it: %j', (to) => {
    // The error ends up in the logs; the message is exactly this, so it holds no address.
    const refused = /^the recipient is not one plain email address$/;

    expect(() => buildKeyEmail({ to, tier: 'pro', secret, limits: {} })).toThrow(refused);
    expect(() => buildRetirementReminder({ to, fingerprint: undefined, until: new Date(0) })).toThrow(refused);
  });
});

describe('ApiKeySecret', () => {
  it('hides the value from JSON, string conversion and inspection', () => {
    const value = secret.reveal();

    expect(JSON.stringify({ secret })).not.toContain(value);
    expect(`${secret}`).not.toContain(value);
    expect(inspect({ nested: { secret } })).not.toContain(value);
  });

  it('fingerprints with the first 8 hex chars of SHA-256', () => {
    expect(secret.fingerprint()).toMatch(/^[0-9a-f]{8}$/);
    expect(new ApiKeySecret('another').fingerprint()).not.toBe(secret.fingerprint());
  });
});
