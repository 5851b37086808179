import * as z from './schema';

/**
 * Settings every function reads once, at cold start. A missing or malformed setting fails the
 * init with a message naming it, instead of failing the thousandth request.
 */
export interface Config {
  tableName: string;
  /** tier name -> usage plan id, from infra/tiers.json via the deploy or the local bootstrap */
  tierMap: Readonly<Record<string, string>>;
  senderEmail: string;
  sesConfigurationSet: string | undefined;
  rotationDays: number;
  graceDays: number;
  keyNamePrefix: string;
  /** How long a claim keeps other attempts out; longer than the function timeout. */
  leaseSeconds: number;
  /** How long a finished registration is kept for replays before its TTL removes it. */
  registrationRetentionDays: number;
  queueUrl: string | undefined;
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
}

/**
 * The usage plan of a tier, or undefined for a name that is no tier. Own keys only: a tier named
 * "constructor" or "__proto__" (a hand-made queue message or billing event) must not find
 * Object.prototype's members.
 */
export function usagePlanOf(tierMap: Readonly<Record<string, string>>, tier: string): string | undefined {
  return Object.hasOwn(tierMap, tier) ? tierMap[tier] : undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const tierMapSchema = z.pipe(
  z.pipe(
    z.string(),
    z.transform((raw, ctx) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        ctx.issues.push({ code: 'custom', message: 'is not JSON', input: raw });
        return z.NEVER;
      }
    }),
  ),
  z.record(z.string().check(z.regex(/^[a-z][a-z0-9-]{0,31}$/)), z.string().check(z.minLength(1))).check(
    z.refine((map) => Object.keys(map).length > 0, 'names no tier'),
  ),
);

/** A whole number from the environment, within bounds; `fallback` when unset. */
const count = (min: number, max: number, fallback: number) =>
  z._default(z.coerce.number().check(z.int(), z.minimum(min), z.maximum(max)), fallback);

const envSchema = z
  .object({
    TABLE_NAME: z.string().check(z.minLength(1)),
    TIER_MAP: tierMapSchema,
    SENDER_EMAIL: z.email(),
    SES_CONFIGURATION_SET: z.optional(z.string().check(z.minLength(1))),
    ROTATION_DAYS: count(1, 3650, 90),
    GRACE_DAYS: count(0, 365, 7),
    KEY_NAME_PREFIX: z._default(z.string().check(z.regex(/^[A-Za-z0-9-]{1,40}$/)), 'keyplan'),
    LEASE_SECONDS: count(5, 3600, 60),
    REGISTRATION_RETENTION_DAYS: count(1, 3650, 30),
    QUEUE_URL: z.optional(z.url()),
    STAGE: z._default(
      z.string().check(z.regex(/^[A-Za-z0-9-]{1,40}$/, 'must be a stage name: 1 to 40 letters, digits or -')),
      'local',
    ),
    MANAGEMENT_CALLS_PER_SECOND: z._default(z.coerce.number().check(z.minimum(0.1), z.maximum(1000)), 10),
    WORKER_CONCURRENCY: count(2, 1000, 2),
    MANAGEMENT_SHARE_PER_SECOND: z.optional(
      z.coerce
        .number('must be calls per second')
        .check(z.positive('must be calls per second above 0'), z.maximum(1000, 'must be calls per second up to 1000')),
    ),
    MANAGEMENT_CONCURRENCY: z.optional(
      z.coerce
        .number('must be a number of containers')
        .check(
          z.int('must be a whole number of containers'),
          z.minimum(1, 'must be at least 1 container'),
          z.maximum(1000, 'must be at most 1000 containers'),
        ),
    ),
    MANAGEMENT_BURST: z.optional(
      z.coerce
        .number('must be a number of calls')
        .check(
          z.int('must be a whole number of calls'),
          z.minimum(1, 'must be at least 1 call'),
          z.maximum(1000, 'must be at most 1000 calls'),
        ),
    ),
    REMINDER_DAYS: count(0, 365, 2),
    KEY_RETENTION_DAYS: count(0, 3650, 30),
    ROTATION_BATCH_SIZE: count(1, 10_000, 50),
    RETIREMENT_BATCH_SIZE: count(1, 10_000, 100),
    RECONCILE_MIN_KEY_AGE_MINUTES: count(10, 10_080, 60),
    RESUME_AFTER_MINUTES: count(1, 1_440, 15),
    RESUME_BATCH_SIZE: count(1, 10_000, 100),
    SWEEP_MINUTES: count(1, 1_440, 5),
  })
  .check(
    z.refine(
      // A function's share comes out of the budget of all functions: more would break the split's sum.
      (env) =>
        env.MANAGEMENT_SHARE_PER_SECOND === undefined ||
        env.MANAGEMENT_SHARE_PER_SECOND <= env.MANAGEMENT_CALLS_PER_SECOND,
      {
        path: ['MANAGEMENT_SHARE_PER_SECOND'],
        message: 'is more than MANAGEMENT_CALLS_PER_SECOND, the budget of all functions together',
      },
    ),
  );

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'environment');
      return env[name] === undefined ? `${name} is not set` : `${name} ${issue.message}`;
    });
    throw new ConfigError(`keyplan configuration is invalid: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  return {
    tableName: e.TABLE_NAME,
    tierMap: Object.freeze({ ...e.TIER_MAP }),
    senderEmail: e.SENDER_EMAIL,
    sesConfigurationSet: e.SES_CONFIGURATION_SET,
    rotationDays: e.ROTATION_DAYS,
    graceDays: e.GRACE_DAYS,
    keyNamePrefix: e.KEY_NAME_PREFIX,
    leaseSeconds: e.LEASE_SECONDS,
    registrationRetentionDays: e.REGISTRATION_RETENTION_DAYS,
    queueUrl: e.QUEUE_URL,
    stage: e.STAGE,
    managementCallsPerSecond: e.MANAGEMENT_CALLS_PER_SECOND,
    workerConcurrency: e.WORKER_CONCURRENCY,
    ...managementShare(e),
    reminderDays: e.REMINDER_DAYS,
    keyRetentionDays: e.KEY_RETENTION_DAYS,
    rotationBatchSize: e.ROTATION_BATCH_SIZE,
    retirementBatchSize: e.RETIREMENT_BATCH_SIZE,
    reconcileMinKeyAgeMinutes: e.RECONCILE_MIN_KEY_AGE_MINUTES,
    resumeAfterMinutes: e.RESUME_AFTER_MINUTES,
    resumeBatchSize: e.RESUME_BATCH_SIZE,
    sweepMinutes: e.SWEEP_MINUTES,
  };
}

/**
 * The function's own share of the management budget. The deploy sets all three per function
 * (infra/serverless/management-budget.js); unset, as locally, a container paces to
 * MANAGEMENT_CALLS_PER_SECOND / WORKER_CONCURRENCY, the worker's share before the split.
 */
function managementShare(
  e: z.infer<typeof envSchema>,
): Pick<Config, 'managementSharePerSecond' | 'managementConcurrency' | 'managementBurst'> {
  const share = e.MANAGEMENT_SHARE_PER_SECOND ?? e.MANAGEMENT_CALLS_PER_SECOND;
  const concurrency = e.MANAGEMENT_CONCURRENCY ?? e.WORKER_CONCURRENCY;
  return {
    managementSharePerSecond: share,
    managementConcurrency: concurrency,
    managementBurst: e.MANAGEMENT_BURST ?? Math.max(1, Math.floor(share / concurrency)),
  };
}
