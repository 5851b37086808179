import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ApiKeySecret } from '../../shared/api-key-secret';
import { buildKeyEmail } from '../../shared/provisioning/key-email';

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
