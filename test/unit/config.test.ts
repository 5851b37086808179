import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadCoreConfig, loadEnqueueConfig, usagePlanOf } from '../../shared/config';

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

  it('reads where lifecycle events go: the source keyplan.<STAGE> and the default bus unless set', () => {
    expect(loadConfig(complete)).toMatchObject({ eventSource: 'keyplan.local', eventBusName: 'default' });
    expect(loadConfig({ ...complete, STAGE: 'prod' }).eventSource).toBe('keyplan.prod');
    const bus = 'arn:aws:events:eu-west-1:123456789012:event-bus/keyplan-bus';
    expect(loadConfig({ ...complete, EVENT_SOURCE: 'acme.keys', EVENT_BUS_NAME: bus })).toMatchObject({
      eventSource: 'acme.keys',
      eventBusName: bus,
    });
  });

  it.each([
    ['EVENT_SOURCE', 'aws.keyplan', /EVENT_SOURCE must be an event source/],
    ['EVENT_SOURCE', 'keyplan prod', /EVENT_SOURCE must be an event source/],
    ['EVENT_BUS_NAME', 'arn:aws:sqs:us-east-1:123456789012:queue', /EVENT_BUS_NAME must be an event bus name or ARN/],
    ['EVENT_BUS_NAME', '', /EVENT_BUS_NAME must be an event bus name or ARN/],
  ])('refuses %s %j', (name, value, message) => {
    expect(() => loadConfig({ ...complete, [name]: value })).toThrow(message);
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
    ['ROTATION_DAYS', '0', 'ROTATION_DAYS must be a whole number from 1 to 3650'],
    ['ROTATION_DAYS', 'soon', 'ROTATION_DAYS must be a whole number from 1 to 3650'],
    ['ROTATION_DAYS', '1.5', 'ROTATION_DAYS must be a whole number from 1 to 3650'],
    ['ROTATION_DAYS', '', 'ROTATION_DAYS must be a whole number from 1 to 3650'],
    ['GRACE_DAYS', '-1', 'GRACE_DAYS must be a whole number from 0 to 365'],
    ['TABLE_NAME', '', 'TABLE_NAME must not be empty'],
    ['SENDER_EMAIL', 'nobody', 'SENDER_EMAIL must be one plain email address'],
    ['SENDER_EMAIL', 'Keys <keys@example.com>', 'SENDER_EMAIL must be one plain email address'],
    ['QUEUE_URL', 'not a url', 'QUEUE_URL must be a URL'],
    ['QUEUE_URL', 'https://sqs.example.com/\n1/q', 'QUEUE_URL must be a URL'],
    ['TIER_MAP', 'not json', 'TIER_MAP must be a JSON object of tier names and usage plan ids, such as {"free":"a1b2c3"}'],
    ['TIER_MAP', '["free"]', 'TIER_MAP must be a JSON object of tier names and usage plan ids, such as {"free":"a1b2c3"}'],
    ['TIER_MAP', '{}', 'TIER_MAP names no tier'],
    [
      'TIER_MAP',
      '{"Free Tier":"plan"}',
      'TIER_MAP names the tier "Free Tier": a tier name is 1 to 32 lowercase letters, digits or -, starting with a letter',
    ],
    ['TIER_MAP', '{"free":""}', 'TIER_MAP gives the tier "free" no usage plan id'],
    ['KEY_NAME_PREFIX', 'key plan', 'KEY_NAME_PREFIX must be 1 to 40 letters, digits or -'],
    ['STAGE', 'my stage', 'STAGE must be a stage name: 1 to 40 letters, digits or -'],
    ['MANAGEMENT_CALLS_PER_SECOND', '0', 'MANAGEMENT_CALLS_PER_SECOND must be a number from 0.1 to 1000'],
    ['MANAGEMENT_SHARE_PER_SECOND', 'fast', 'MANAGEMENT_SHARE_PER_SECOND must be calls per second, above 0 and at most 1000'],
    ['MANAGEMENT_SHARE_PER_SECOND', '0', 'MANAGEMENT_SHARE_PER_SECOND must be calls per second, above 0 and at most 1000'],
    ['MANAGEMENT_SHARE_PER_SECOND', '1001', 'MANAGEMENT_SHARE_PER_SECOND must be calls per second, above 0 and at most 1000'],
    ['MANAGEMENT_CONCURRENCY', '0', 'MANAGEMENT_CONCURRENCY must be a whole number from 1 to 1000'],
    ['MANAGEMENT_CONCURRENCY', '1.5', 'MANAGEMENT_CONCURRENCY must be a whole number from 1 to 1000'],
    ['MANAGEMENT_BURST', '0', 'MANAGEMENT_BURST must be a whole number from 1 to 1000'],
    ['WORKER_CONCURRENCY', '1', 'WORKER_CONCURRENCY must be a whole number from 2 to 1000'],
    ['RECONCILE_MIN_KEY_AGE_MINUTES', '9', 'RECONCILE_MIN_KEY_AGE_MINUTES must be a whole number from 10 to 10080'],
  ])('fails naming %s when it is "%s", in a sentence', (name, value, message) => {
    expect(() => loadConfig({ ...complete, [name]: value })).toThrow(
      new ConfigError(`keyplan configuration is invalid: ${message}`),
    );
  });

  it('names every setting that is wrong at once', () => {
    expect(() => loadConfig({ TIER_MAP: '{}', GRACE_DAYS: 'x' })).toThrow(
      new ConfigError(
        'keyplan configuration is invalid: TABLE_NAME is not set; TIER_MAP names no tier; SENDER_EMAIL is not set; ' +
          'GRACE_DAYS must be a whole number from 0 to 365',
      ),
    );
  });

  it('reads numbers as written, bounds included, and a queue URL without surrounding white space', () => {
    const config = loadConfig({
      ...complete,
      GRACE_DAYS: '0',
      ROTATION_DAYS: ' 3650 ',
      MANAGEMENT_CALLS_PER_SECOND: '0.1',
      QUEUE_URL: ' https://sqs.eu-west-1.amazonaws.com/123456789012/q ',
    });

    expect(config).toMatchObject({
      graceDays: 0,
      rotationDays: 3650,
      managementCallsPerSecond: 0.1,
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q',
    });
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

describe('SHARDS', () => {
  it('accepts the shard ids key values can carry, and no other', async () => {
    const { SHARD_ID_PATTERN: keyValueIds } = await import('../../shared/core/key-value');
    const { SHARD_ID_PATTERN: configIds } = await import('../../shared/config');
    expect(configIds.source).toBe(keyValueIds.source);
  });
});

describe('QUEUE_URLS', () => {
  const homeQueue = 'https://sqs.us-east-1.amazonaws.com/123456789012/keyplan-prod-provisioning';
  const euQueue = 'https://sqs.us-east-1.amazonaws.com/123456789012/keyplan-prod-provisioning-eu1';
  const withShards = {
    ...complete,
    SHARDS: JSON.stringify([
      { id: 'home' },
      {
        id: 'eu1',
        region: 'eu-west-1',
        roleArn: 'arn:aws:iam::222222222222:role/keyplan-shard',
        externalId: 'keyplan-external-id',
        plans: { free: 'p1free', pro: 'p1pro' },
      },
    ]),
    QUEUE_URL: homeQueue,
  };

  it('is empty unless set: every shard uses QUEUE_URL, as one-shard deployments and older configs do', () => {
    expect(loadConfig(withShards).shardQueueUrls).toEqual({});
    expect(loadConfig({ ...complete, QUEUE_URL: homeQueue })).toMatchObject({ queueUrl: homeQueue, shardQueueUrls: {} });
  });

  it('reads the own queue of each shard other than the home one', () => {
    const config = loadConfig({ ...withShards, QUEUE_URLS: JSON.stringify({ eu1: ` ${euQueue} ` }) });

    expect(config).toMatchObject({ queueUrl: homeQueue, shardQueueUrls: { eu1: euQueue } });
  });

  it.each([
    ['not JSON', '{eu1:', 'QUEUE_URLS must be a JSON object of shard ids and queue URLs'],
    ['a list', JSON.stringify([euQueue]), 'QUEUE_URLS must be a JSON object of shard ids and queue URLs'],
    ['no shard', '{}', 'QUEUE_URLS names no shard'],
    ['a queue that is no URL', JSON.stringify({ eu1: 'not a url' }), 'QUEUE_URLS.eu1 must be a URL'],
    ['a queue that is not text', JSON.stringify({ eu1: 7 }), 'QUEUE_URLS.eu1'],
    ['the home shard', JSON.stringify({ home: euQueue }), 'QUEUE_URLS names the home shard "home", whose queue is QUEUE_URL'],
    ['a shard SHARDS does not list', JSON.stringify({ us2: euQueue }), 'QUEUE_URLS names the shard "us2", which SHARDS does not list'],
  ])('refuses %s, saying so', (_case, value, message) => {
    expect(() => loadConfig({ ...withShards, QUEUE_URLS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...withShards, QUEUE_URLS: value })).toThrow(message);
  });

  it('refuses queues of their own without QUEUE_URL, the home shard’s', () => {
    const { QUEUE_URL: _home, ...env } = withShards;

    expect(() => loadConfig({ ...env, QUEUE_URLS: JSON.stringify({ eu1: euQueue }) })).toThrow(
      "QUEUE_URLS needs QUEUE_URL, the home shard's queue and that of every shard without its own",
    );
  });

  it('refuses queues of their own without SHARDS: there is no shard but the home one', () => {
    const { SHARDS: _shards, ...env } = withShards;

    expect(() => loadConfig({ ...env, QUEUE_URLS: JSON.stringify({ eu1: euQueue }) })).toThrow(
      'QUEUE_URLS names the shard "eu1", which SHARDS does not list',
    );
  });
});

describe('loadCoreConfig (the settings of every function that neither enqueues nor publishes)', () => {
  const wholeEnv = {
    ...complete,
    STAGE: 'prod',
    GRACE_DAYS: '3',
    MANAGEMENT_CALLS_PER_SECOND: '20',
    MANAGEMENT_SHARE_PER_SECOND: '5',
    SHARDS: JSON.stringify([{ id: 'home' }, { id: 'eu1', region: 'eu-west-1', plans: { free: 'p1free', pro: 'p1pro' } }]),
  };

  it('reads what loadConfig reads of the same settings, and no queue or event-bus setting', () => {
    const core = loadCoreConfig(wholeEnv);
    const { queueUrl: _queueUrl, shardQueueUrls: _shardQueueUrls, eventSource: _eventSource, eventBusName: _eventBusName, ...rest } = loadConfig(wholeEnv);

    expect(core).toEqual(rest);
    for (const field of ['queueUrl', 'shardQueueUrls', 'eventSource', 'eventBusName']) expect(core).not.toHaveProperty(field);
  });

  it('ignores queue and event-bus settings loadConfig refuses', () => {
    const env = {
      ...complete,
      QUEUE_URL: 'not a url',
      QUEUE_URLS: '{"nowhere":"x"}',
      EVENT_SOURCE: 'aws.keyplan',
      EVENT_BUS_NAME: 'arn:aws:sqs:us-east-1:123456789012:queue',
    };

    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(loadCoreConfig(env)).toMatchObject({ tableName: 'keyplan-test', senderEmail: 'keys@example.com' });
  });

  it.each([
    [{ TABLE_NAME: undefined }, 'TABLE_NAME is not set'],
    [{ TIER_MAP: '{}' }, 'TIER_MAP names no tier'],
    [{ SENDER_EMAIL: 'nobody' }, 'SENDER_EMAIL must be one plain email address'],
    [{ ROTATION_DAYS: '0' }, 'ROTATION_DAYS must be a whole number from 1 to 3650'],
    [{ STAGE: 'my stage' }, 'STAGE must be a stage name: 1 to 40 letters, digits or -'],
    [{ WORKER_CONCURRENCY: '1' }, 'WORKER_CONCURRENCY must be a whole number from 2 to 1000'],
    [{ MANAGEMENT_CALLS_PER_SECOND: '10', MANAGEMENT_SHARE_PER_SECOND: '12' }, 'MANAGEMENT_SHARE_PER_SECOND is more than MANAGEMENT_CALLS_PER_SECOND, the budget of all functions together'],
    [{ SHARDS: 'not json' }, 'SHARDS must be a JSON list of shards, such as [{"id":"home","baseUrl":"https://…"}]'],
  ])('refuses %o as loadConfig does, in the same words', (change, message) => {
    const env: Record<string, string | undefined> = { ...complete, ...change };
    const refusal = (load: () => unknown) => {
      try {
        load();
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const core = refusal(() => loadCoreConfig(env));
    const full = refusal(() => loadConfig(env));

    expect(core).toBeInstanceOf(ConfigError);
    expect(core).toEqual(full);
    expect((core as Error).message).toBe(`keyplan configuration is invalid: ${message}`);
  });
});

describe('loadEnqueueConfig (register’s settings: the core and the queues)', () => {
  const euQueue = 'https://sqs.us-east-1.amazonaws.com/123456789012/keyplan-prod-provisioning-eu1';
  const withQueues = {
    ...complete,
    STAGE: 'prod',
    SHARDS: JSON.stringify([{ id: 'home' }, { id: 'eu1', region: 'eu-west-1', plans: { free: 'p1free', pro: 'p1pro' } }]),
    QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/keyplan-prod-provisioning',
    QUEUE_URLS: JSON.stringify({ eu1: euQueue }),
  };

  it('reads what loadConfig reads of the same settings, queues included, and no event-bus setting', () => {
    const enqueue = loadEnqueueConfig(withQueues);
    const { eventSource: _eventSource, eventBusName: _eventBusName, ...rest } = loadConfig(withQueues);

    expect(enqueue).toEqual(rest);
    expect(enqueue.shardQueueUrls).toEqual({ eu1: euQueue });
    for (const field of ['eventSource', 'eventBusName']) expect(enqueue).not.toHaveProperty(field);
  });

  it.each([
    [{ QUEUE_URL: 'not a url' }, 'QUEUE_URL must be a URL'],
    [{ QUEUE_URLS: JSON.stringify({ us2: euQueue }) }, 'QUEUE_URLS names the shard "us2", which SHARDS does not list'],
    [{ QUEUE_URL: undefined }, "QUEUE_URLS needs QUEUE_URL, the home shard's queue and that of every shard without its own"],
    [{ TABLE_NAME: undefined }, 'TABLE_NAME is not set'],
  ])('refuses %o as loadConfig does, in the same words', (change, message) => {
    const env: Record<string, string | undefined> = { ...withQueues, ...change };

    expect(() => loadEnqueueConfig(env)).toThrow(ConfigError);
    expect(() => loadEnqueueConfig(env)).toThrow(`keyplan configuration is invalid: ${message}`);
    expect(() => loadConfig(env)).toThrow(`keyplan configuration is invalid: ${message}`);
  });

  it('ignores the event-bus settings loadConfig refuses', () => {
    const env = { ...withQueues, EVENT_SOURCE: 'aws.keyplan', EVENT_BUS_NAME: 'arn:aws:sqs:us-east-1:123456789012:queue' };

    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(loadEnqueueConfig(env)).toMatchObject({ tableName: 'keyplan-test', shardQueueUrls: { eu1: euQueue } });
  });
});
