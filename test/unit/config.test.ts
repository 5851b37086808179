import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, usagePlanOf } from '../../shared/config';

const complete = {
  TABLE_NAME: 'keyplan-test',
  TIER_MAP: '{"free":"plan-free","pro":"plan-pro"}',
  SENDER_EMAIL: 'keys@example.com',
};

describe('loadConfig', () => {
  it('reads a complete environment with defaults for the optional settings', () => {
    const config = loadConfig(complete);

    expect(config).toMatchObject({
      tableName: 'keyplan-test',
      tierMap: { free: 'plan-free', pro: 'plan-pro' },
      senderEmail: 'keys@example.com',
      rotationDays: 90,
      graceDays: 7,
      keyNamePrefix: 'keyplan',
    });
  });

  it.each(['TABLE_NAME', 'TIER_MAP', 'SENDER_EMAIL'])('fails naming %s when it is missing', (name) => {
    const env: Record<string, string> = { ...complete };
    delete env[name];

    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(`${name} is not set`);
  });

  it.each([
    ['TIER_MAP', 'not json'],
    ['TIER_MAP', '{}'],
    ['TIER_MAP', '{"Free Tier":"plan"}'],
    ['SENDER_EMAIL', 'nobody'],
    ['ROTATION_DAYS', 'soon'],
    ['GRACE_DAYS', '-1'],
  ])('fails naming %s when it is %s', (name, value) => {
    expect(() => loadConfig({ ...complete, [name]: value })).toThrow(new RegExp(`${name} `));
  });
});

describe('usagePlanOf', () => {
  const tierMap = { free: 'plan-free', pro: 'plan-pro' };

  it('gives the plan of a configured tier', () => {
    expect(usagePlanOf(tierMap, 'pro')).toBe('plan-pro');
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'enterprise'])(
    'knows no tier "%s": Object.prototype members are no tiers',
    (tier) => {
      expect(usagePlanOf(tierMap, tier)).toBeUndefined();
    },
  );
});
