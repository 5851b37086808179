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

  it('reads the stage, "local" when unset', () => {
    expect(loadConfig(complete).stage).toBe('local');
    expect(loadConfig({ ...complete, STAGE: 'prod' }).stage).toBe('prod');
  });

  it("reads the function's own share of the management budget", () => {
    const config = loadConfig({
      ...complete,
      MANAGEMENT_CALLS_PER_SECOND: '10',
      MANAGEMENT_SHARE_PER_SECOND: '2.5',
      MANAGEMENT_CONCURRENCY: '5',
      MANAGEMENT_BURST: '3',
    });

    expect(config).toMatchObject({
      managementCallsPerSecond: 10,
      managementSharePerSecond: 2.5,
      managementConcurrency: 5,
      managementBurst: 3,
    });
  });

  it('paces to the whole budget over WORKER_CONCURRENCY when no share is set, as locally', () => {
    expect(loadConfig(complete)).toMatchObject({
      managementSharePerSecond: 10,
      managementConcurrency: 2,
      managementBurst: 5,
    });
    expect(loadConfig({ ...complete, MANAGEMENT_CALLS_PER_SECOND: '500' })).toMatchObject({
      managementSharePerSecond: 500,
      managementConcurrency: 2,
      managementBurst: 250,
    });
  });

  it('gives a container a burst of at least one call', () => {
    const config = loadConfig({ ...complete, MANAGEMENT_SHARE_PER_SECOND: '0.25', MANAGEMENT_CONCURRENCY: '2' });

    expect(config.managementBurst).toBe(1);
  });

  it('refuses a share larger than the budget of all functions together', () => {
    expect(() =>
      loadConfig({ ...complete, MANAGEMENT_CALLS_PER_SECOND: '10', MANAGEMENT_SHARE_PER_SECOND: '12' }),
    ).toThrow('MANAGEMENT_SHARE_PER_SECOND is more than MANAGEMENT_CALLS_PER_SECOND');
  });

  it.each([
    ['STAGE', 'my stage', 'must be a stage name'],
    ['MANAGEMENT_SHARE_PER_SECOND', 'fast', 'must be calls per second'],
    ['MANAGEMENT_SHARE_PER_SECOND', '0', 'must be calls per second above 0'],
    ['MANAGEMENT_CONCURRENCY', '0', 'must be at least 1 container'],
    ['MANAGEMENT_CONCURRENCY', '1.5', 'must be a whole number of containers'],
    ['MANAGEMENT_BURST', '0', 'must be at least 1 call'],
  ])('fails naming %s when it is "%s": %s', (name, value, message) => {
    expect(() => loadConfig({ ...complete, [name]: value })).toThrow(`${name} ${message}`);
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
