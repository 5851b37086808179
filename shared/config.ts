import { ValidationError } from './errors';
import { EMAIL_PATTERN, fail, type Infer, integer, number, oneOf, optional, refine, type Schema, text } from './validation';

/**
 * Settings every function reads once, at cold start. A missing or malformed setting fails the
 * init with a message naming it, instead of failing the thousandth request.
 */
export interface Config {
  tableName: string;
  /** tier name -> usage plan id, from infra/tiers.json via the deploy or the local bootstrap */
  tierMap: Readonly<Record<string, string>>;
  /**
   * Where keys are made (DESIGN §8), the home shard first. Without SHARDS, one shard: this
   * account and Region with TIER_MAP's plans, placing every customer (as before shards).
   */
  shards: readonly ShardConfig[];
  senderEmail: string;
  sesConfigurationSet: string | undefined;
  rotationDays: number;
  graceDays: number;
  keyNamePrefix: string;
  /** How long a claim keeps other attempts out; longer than the function timeout. */
  leaseSeconds: number;
  /** How long a finished registration is kept for replays before its TTL removes it. */
  registrationRetentionDays: number;
  /** The provisioning queue of the home shard, and of any shard without a queue of its own. */
  queueUrl: string | undefined;
  /**
   * shard id -> its own provisioning queue (QUEUE_URLS), for shards other than the home one, so a
   * worker batch holds one shard's registrations; empty without QUEUE_URLS.
   */
  shardQueueUrls: Readonly<Record<string, string>>;
  /**
   * The deployment's stage (`keyplan:stage` tag on every key it creates; its roles may touch only
   * keys carrying it). 'local' for the local stack.
   */
  stage: string;
  /**
   * API Gateway management calls per second all of keyplan's functions together may make: the
   * account has 10/s (burst 40) for every caller, and the limit cannot be raised.
   */
  managementCallsPerSecond: number;
  /** The queue trigger's MaximumConcurrency; the default of managementConcurrency. */
  workerConcurrency: number;
  /**
   * This function's share of managementCallsPerSecond, all its containers together
   * (infra/serverless/management-budget.js); the whole budget when unset.
   */
  managementSharePerSecond: number;
  /** The most containers of this function at once; each paces to share / concurrency. */
  managementConcurrency: number;
  /** Management calls one container may make at once before pacing starts. */
  managementBurst: number;
  /** Days before a rotated key stops working that its customer is reminded. */
  reminderDays: number;
  /** Days a disabled key is kept (still counting against the 10,000-key quota) before deletion. */
  keyRetentionDays: number;
  /** Keys one rotation run handles at most; the rest wait for the next run. */
  rotationBatchSize: number;
  /** Keys one retirement run handles at most, per step. */
  retirementBatchSize: number;
  /**
   * The reconciler leaves keys and records younger than this alone: a registration may be between
   * creating its key and recording it. Longer than any claim lease.
   */
  reconcileMinKeyAgeMinutes: number;
  /** An unfinished registration is resumed by the sweep this long after its last attempt (doubling). */
  resumeAfterMinutes: number;
  /** Registrations one sweep run resumes at most. */
  resumeBatchSize: number;
  /**
   * How often the sweep runs (the resume schedule): it finishes operations that died holding a
   * customer's lease, so a customer left that way waits at most this long (plus the lease).
   */
  sweepMinutes: number;
  /**
   * The `source` of keyplan's lifecycle events on EventBridge (DESIGN §9): `keyplan.<STAGE>`
   * unless set. The publisher's role may put events with this source only.
   */
  eventSource: string;
  /** The bus lifecycle events are published to: a name or an ARN; the account's `default` unless set. */
  eventBusName: string;
}

/**
 * The usage plan of a tier, or undefined for a name that is no tier. Own keys only: a tier named
 * "constructor" or "__proto__" (a hand-made queue message or billing event) must not find
 * Object.prototype's members.
 */
export function usagePlanOf(tierMap: Readonly<Record<string, string>>, tier: string): string | undefined {
  return Object.hasOwn(tierMap, tier) ? tierMap[tier] : undefined;
}

/**
 * A shard as configured: what the domain sees of it (core/shards.ts's Shard, which this satisfies:
 * the neutral config imports no domain folder), and where its API Gateway is (aws/clients.ts).
 */
export interface ShardConfig {
  id: string;
  plans: Readonly<Record<string, string>>;
  baseUrl?: string | undefined;
  highWaterKeys?: number | undefined;
  keyCeiling: number;
  state: 'accepting' | 'draining';
  region?: string | undefined;
  roleArn?: string | undefined;
  externalId?: string | undefined;
}

/** The shard of a deployment without a shard list; its key values start `kp_home_`. */
export const HOME_SHARD_ID = 'home';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * What every function reads: the configuration but the queues (QUEUE_URL, QUEUE_URLS), which only
 * the functions that enqueue read, and the event bus (EVENT_SOURCE, EVENT_BUS_NAME), which only the
 * publisher reads. A function that reads none of those loads this (loadCoreConfig), and neither
 * parses nor bundles their rules.
 */
export type CoreConfig = Omit<Config, 'queueUrl' | 'shardQueueUrls' | 'eventSource' | 'eventBusName'>;

/** What the functions that enqueue read (loadEnqueueConfig): the core and the queues. */
export type EnqueueConfig = Omit<Config, 'eventSource' | 'eventBusName'>;

/** A tier name is a usage plan's tag and part of metric names: short, lowercase, no spaces. */
const TIER_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** A setting's JSON text, parsed; undefined when it is no JSON (the caller says what was expected). */
function parseJson(value: unknown, field: string): unknown {
  const raw = text()(value, field);
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

/** TIER_MAP: JSON of tier name -> usage plan id, at least one. */
const tierMap_: Schema<Record<string, string>> = (value, field) => {
  const map = parseJson(value, field);
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    fail(field, 'must be a JSON object of tier names and usage plan ids, such as {"free":"a1b2c3"}');
  }
  const entries = Object.entries(map);
  if (entries.length === 0) fail(field, 'names no tier');
  for (const [tier, plan] of entries) {
    if (!TIER_NAME.test(tier)) {
      fail(field, `names the tier "${tier}": a tier name is 1 to 32 lowercase letters, digits or -, starting with a letter`);
    }
    if (typeof plan !== 'string' || plan === '') fail(field, `gives the tier "${tier}" no usage plan id`);
  }
  return map as Record<string, string>;
};

const SHARD_FIELDS = new Set(['id', 'region', 'roleArn', 'externalId', 'baseUrl', 'plans', 'keyCeiling', 'highWaterPercent', 'state']);
/** A shard id: the prefix of its key values (core/key-value.ts's SHARD_ID_PATTERN; config.test checks). */
export const SHARD_ID_PATTERN = /^[a-z0-9]{1,12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[\w+=,.@/-]{1,128}$/;

/**
 * SHARDS: JSON list of shards (infra/shards.json), the home shard first. A shard without `plans`
 * has TIER_MAP's (the home account's own plans); `roleArn` needs `externalId`; the high-water mark
 * is `highWaterPercent` (default 80) of `keyCeiling` (default 10,000).
 */
const shardList: Schema<unknown[]> = (value, field) => {
  const list = parseJson(value, field);
  if (!Array.isArray(list) || list.length === 0) fail(field, 'must be a JSON list of shards, such as [{"id":"home","baseUrl":"https://…"}]');
  return list;
};

function toShards(list: unknown[] | undefined, tierMap: Readonly<Record<string, string>>, baseUrl: string | undefined): ShardConfig[] {
  if (!list) return [{ id: HOME_SHARD_ID, plans: tierMap, baseUrl, keyCeiling: ACCOUNT_KEY_CEILING, state: 'accepting' }];
  const tiers = Object.keys(tierMap).sort().join(',');
  const ids = new Set<string>();
  return list.map((entry, index) => {
    const where = `SHARDS[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(where, 'must be an object');
    const shard = entry as Record<string, unknown>;
    const unknown = Object.keys(shard).find((key) => !SHARD_FIELDS.has(key));
    if (unknown) fail(where, `has the unknown field "${unknown}"`);
    const id = text({ pattern: SHARD_ID_PATTERN, patternMessage: 'must be 1 to 12 lowercase letters or digits' })(shard.id, `${where}.id`);
    if (ids.has(id)) fail(`${where}.id`, `repeats the shard "${id}"`);
    ids.add(id);
    const region = optional(text({ pattern: REGION, patternMessage: 'must be a Region such as eu-west-1' }))(shard.region, `${where}.region`);
    const roleArn = optional(text({ pattern: ROLE_ARN, patternMessage: 'must be an IAM role ARN' }))(shard.roleArn, `${where}.roleArn`);
    const externalId = optional(text({ min: 2, max: 1224 }))(shard.externalId, `${where}.externalId`);
    if (roleArn && !externalId) fail(`${where}.externalId`, 'is required with roleArn');
    const url = optional(refine(text(), (candidate) => URL.canParse(candidate) && candidate.startsWith('https://'), 'must be an https URL'))(
      shard.baseUrl,
      `${where}.baseUrl`,
    );
    const plans = shard.plans === undefined ? tierMap : tierMap_(JSON.stringify(shard.plans), `${where}.plans`);
    if (Object.keys(plans).sort().join(',') !== tiers) fail(`${where}.plans`, `must name the tiers of TIER_MAP: ${tiers}`);
    const keyCeiling = optional(integer({ min: 1, max: ACCOUNT_KEY_CEILING }))(shard.keyCeiling, `${where}.keyCeiling`) ?? ACCOUNT_KEY_CEILING;
    const percent = optional(integer({ min: 1, max: 100 }))(shard.highWaterPercent, `${where}.highWaterPercent`) ?? 80;
    const state = optional(oneOf(['accepting', 'draining'] as const))(shard.state, `${where}.state`) ?? 'accepting';
    return {
      id,
      region,
      roleArn,
      externalId,
      baseUrl: url,
      plans: Object.freeze({ ...plans }),
      keyCeiling,
      highWaterKeys: Math.floor((keyCeiling * percent) / 100),
      state,
    };
  });
}

/** A queue URL the SDK can send to (tabs and line breaks would be dropped by the URL parser). */
const queueUrl_ = refine(text({ trim: true }), (url) => !/[\t\n\r]/.test(url) && URL.canParse(url), 'must be a URL');

/** QUEUE_URLS: JSON of shard id -> that shard's provisioning queue URL, at least one. */
const queueUrls_: Schema<Record<string, string>> = (value, field) => {
  const map = parseJson(value, field);
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    fail(field, 'must be a JSON object of shard ids and queue URLs, such as {"eu1":"https://sqs…/keyplan-prod-provisioning-eu1"}');
  }
  const entries = Object.entries(map);
  if (entries.length === 0) fail(field, 'names no shard');
  return Object.fromEntries(entries.map(([shard, url]) => [shard, queueUrl_(url, `${field}.${shard}`)]));
};

/**
 * Each queue of QUEUE_URLS must be a shard's of SHARDS other than the home one (whose queue is
 * QUEUE_URL), and comes with QUEUE_URL: a shard without a queue of its own uses that one.
 */
function toShardQueueUrls(
  urls: Record<string, string> | undefined,
  shards: readonly ShardConfig[],
  homeQueueUrl: string | undefined,
): Record<string, string> {
  if (!urls) return {};
  if (!homeQueueUrl) fail('QUEUE_URLS', "needs QUEUE_URL, the home shard's queue and that of every shard without its own");
  const [home, ...others] = shards;
  for (const shard of Object.keys(urls)) {
    if (shard === home?.id) fail('QUEUE_URLS', `names the home shard "${shard}", whose queue is QUEUE_URL`);
    if (!others.some((other) => other.id === shard)) {
      fail('QUEUE_URLS', `names the shard "${shard}", which SHARDS does not list`);
    }
  }
  return urls;
}

/** API keys per account and Region; not adjustable (DESIGN §6). */
const ACCOUNT_KEY_CEILING = 10_000;

/** The environment holds text: a number setting is read from it, and refused as it was written. */
const fromText =
  <T>(schema: Schema<T>): Schema<T> =>
  (value, field) =>
    schema(typeof value === 'string' && value.trim() !== '' ? Number(value) : value, field);

const withDefault =
  <T>(schema: Schema<T>, fallback: T): Schema<T> =>
  (value, field) =>
    value === undefined ? fallback : schema(value, field);

/** A whole number from the environment, within bounds; `fallback` when unset. */
const count = (min: number, max: number, fallback: number) => withDefault(fromText(integer({ min, max })), fallback);

const NAME_RULE = { pattern: /^[A-Za-z0-9-]{1,40}$/, patternMessage: 'must be 1 to 40 letters, digits or -' };
const SHARE_RULE = 'must be calls per second, above 0 and at most 1000';

/*
 * Every setting, by its variable; a setting that may be unset has a default or is optional. Four
 * tables, each made by a function, so that a function's bundle holds only the tables its loader
 * reads (a table built at module level would be kept: esbuild cannot tell its calls are pure);
 * loadConfig reads them in this order, the order its refusal tells the problems in.
 */
const coreSettings = () => ({
  TABLE_NAME: text({ min: 1 }),
  TIER_MAP: tierMap_,
  SHARDS: optional(shardList),
  /** The implicit home shard's base URL, told in key emails (without SHARDS). */
  API_BASE_URL: optional(refine(text(), (url) => URL.canParse(url), 'must be a URL')),
  SENDER_EMAIL: text({ pattern: new RegExp(EMAIL_PATTERN, 'u'), patternMessage: 'must be one plain email address' }),
  SES_CONFIGURATION_SET: optional(text({ min: 1 })),
  ROTATION_DAYS: count(1, 3650, 90),
  GRACE_DAYS: count(0, 365, 7),
  KEY_NAME_PREFIX: withDefault(text(NAME_RULE), 'keyplan'),
  LEASE_SECONDS: count(5, 3600, 60),
  REGISTRATION_RETENTION_DAYS: count(1, 3650, 30),
});
const queueSettings = () => ({
  // What the SDK can send to: an absolute URL (tabs and line breaks in it would be dropped by the
  // URL parser, so a value carrying them is refused rather than read as another address).
  QUEUE_URL: optional(queueUrl_),
  /** Shard id -> its own provisioning queue, for shards other than the home one (with SHARDS). */
  QUEUE_URLS: optional(queueUrls_),
});
const moreCoreSettings = () => ({
  STAGE: withDefault(text({ ...NAME_RULE, patternMessage: 'must be a stage name: 1 to 40 letters, digits or -' }), 'local'),
  MANAGEMENT_CALLS_PER_SECOND: withDefault(fromText(number({ min: 0.1, max: 1000 })), 10),
  WORKER_CONCURRENCY: count(2, 1000, 2),
  MANAGEMENT_SHARE_PER_SECOND: optional(
    fromText(refine(number({ max: 1000, message: SHARE_RULE }), (share) => share > 0, SHARE_RULE)),
  ),
  MANAGEMENT_CONCURRENCY: optional(fromText(integer({ min: 1, max: 1000 }))),
  MANAGEMENT_BURST: optional(fromText(integer({ min: 1, max: 1000 }))),
  REMINDER_DAYS: count(0, 365, 2),
  KEY_RETENTION_DAYS: count(0, 3650, 30),
  ROTATION_BATCH_SIZE: count(1, 10_000, 50),
  RETIREMENT_BATCH_SIZE: count(1, 10_000, 100),
  RECONCILE_MIN_KEY_AGE_MINUTES: count(10, 10_080, 60),
  RESUME_AFTER_MINUTES: count(1, 1_440, 15),
  RESUME_BATCH_SIZE: count(1, 10_000, 100),
  SWEEP_MINUTES: count(1, 1_440, 5),
});
const eventSettings = () => {
  /**
   * EventBridge refuses an `aws.` source from callers; keyplan's own are plain dotted names
   * (`keyplan.prod`), which the publisher's IAM condition compares as they are.
   */
  const EVENT_SOURCE_RULE = {
    pattern: /^(?!aws\.)[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/,
    patternMessage: 'must be an event source such as keyplan.prod: letters, digits, ".", "_" or "-", not starting with "aws."',
  };
  /** A bus name (`default`, `keyplan-prod`) or its ARN, as PutEvents takes either. */
  const EVENT_BUS_RULE = {
    pattern: /^(arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus\/)?[A-Za-z0-9._/-]{1,256}$/,
    patternMessage: 'must be an event bus name or ARN',
  };
  return {
    /** Unset: `keyplan.<STAGE>` (loadConfig). */
    EVENT_SOURCE: optional(text(EVENT_SOURCE_RULE)),
    EVENT_BUS_NAME: withDefault(text(EVENT_BUS_RULE), 'default'),
  };
};

type Settings = ReturnType<typeof coreSettings> &
  ReturnType<typeof queueSettings> &
  ReturnType<typeof moreCoreSettings> &
  ReturnType<typeof eventSettings>;
type Env = { [K in keyof Settings]: Infer<Settings[K]> };

/** `ROTATION_DAYS` -> `rotationDays`: the configuration's field a setting is read into. */
type FieldOf<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Lowercase<Head>}${Capitalize<FieldOf<Tail>>}` : Lowercase<S>;
const fieldOf = (name: string) => name.toLowerCase().replace(/_([a-z])/g, (_underscore, letter: string) => letter.toUpperCase());
/** The settings as read, each under its field. */
type AsRead = { [K in keyof Env as FieldOf<K>]: Env[K] };

/**
 * @throws ConfigError naming every setting that is unset or malformed, each in a sentence
 *   ("TIER_MAP is not set; ROTATION_DAYS must be a whole number from 1 to 3650")
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const { config, e } = readConfig(env, { ...coreSettings(), ...queueSettings(), ...moreCoreSettings(), ...eventSettings() });
  return {
    ...withQueues(config, e),
    eventSource: e.EVENT_SOURCE ?? `keyplan.${e.STAGE}`,
    eventBusName: e.EVENT_BUS_NAME,
  };
}

/**
 * The configuration a function that enqueues but does not publish reads (register): loadConfig's
 * rules and refusals but the event bus's.
 * @throws ConfigError naming every setting of the core or the queues that is unset or malformed
 */
export function loadEnqueueConfig(env: NodeJS.ProcessEnv = process.env): EnqueueConfig {
  const { config, e } = readConfig(env, { ...coreSettings(), ...queueSettings(), ...moreCoreSettings() });
  return withQueues(config, e);
}

/** The core with the queues read. @throws ConfigError when QUEUE_URLS does not fit the shards */
function withQueues(config: CoreConfig, e: Env): EnqueueConfig {
  let shardQueueUrls: Record<string, string>;
  try {
    shardQueueUrls = toShardQueueUrls(e.QUEUE_URLS, config.shards, e.QUEUE_URL);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ConfigError(`${INVALID}${error.message}`);
  }
  return { ...config, queueUrl: e.QUEUE_URL, shardQueueUrls: Object.freeze({ ...shardQueueUrls }) };
}

/**
 * The configuration a function that neither enqueues nor publishes reads (CoreConfig): loadConfig's
 * rules and refusals for those settings, none for the others.
 * @throws ConfigError naming every setting of the core that is unset or malformed
 */
export function loadCoreConfig(env: NodeJS.ProcessEnv = process.env): CoreConfig {
  return readConfig(env, { ...coreSettings(), ...moreCoreSettings() }).config;
}

const INVALID = 'keyplan configuration is invalid: ';

/** The settings of `table`, read; the core of the configuration made of them. */
function readConfig(env: NodeJS.ProcessEnv, table: Partial<Settings>): { config: CoreConfig; e: Env } {
  const read: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, schema] of Object.entries(table)) {
    try {
      read[name] = schema(env[name], name);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      problems.push(env[name] === undefined ? `${name} is not set` : error.message);
    }
  }
  const e = read as Env;
  // A function's share comes out of the budget of all functions: more would break the split's sum.
  if (problems.length === 0 && (e.MANAGEMENT_SHARE_PER_SECOND ?? 0) > e.MANAGEMENT_CALLS_PER_SECOND) {
    problems.push('MANAGEMENT_SHARE_PER_SECOND is more than MANAGEMENT_CALLS_PER_SECOND, the budget of all functions together');
  }
  let shards: ShardConfig[] = [];
  if (problems.length === 0) {
    try {
      shards = toShards(e.SHARDS, e.TIER_MAP, e.API_BASE_URL);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length > 0) throw new ConfigError(`${INVALID}${problems.join('; ')}`);
  // Each setting read is the field its name spells (FieldOf); the shard list, its base URL and
  // the management share make fields of their own.
  const { apiBaseUrl: _apiBaseUrl, queueUrls: _queueUrls, ...asRead } = Object.fromEntries(
    Object.entries(read).map(([name, value]) => [fieldOf(name), value]),
  ) as AsRead;
  const config: CoreConfig = { ...asRead, tierMap: Object.freeze({ ...e.TIER_MAP }), shards: Object.freeze(shards), ...managementShare(e) };
  return { config, e };
}

/**
 * The function's own share of the management budget. The deploy sets all three per function
 * (infra/serverless/management-budget.js); unset, as locally, a container paces to
 * MANAGEMENT_CALLS_PER_SECOND / WORKER_CONCURRENCY, the worker's share before the split.
 */
function managementShare(
  e: Env,
): Pick<Config, 'managementSharePerSecond' | 'managementConcurrency' | 'managementBurst'> {
  const share = e.MANAGEMENT_SHARE_PER_SECOND ?? e.MANAGEMENT_CALLS_PER_SECOND;
  const concurrency = e.MANAGEMENT_CONCURRENCY ?? e.WORKER_CONCURRENCY;
  return {
    managementSharePerSecond: share,
    managementConcurrency: concurrency,
    managementBurst: e.MANAGEMENT_BURST ?? Math.max(1, Math.floor(share / concurrency)),
  };
}
