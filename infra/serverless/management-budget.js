// One API Gateway management budget for the whole account (DESIGN §6, §7): 10 requests/s (burst
// 40) shared by every caller, not adjustable. This file is the single place that splits it among
// keyplan's functions. serverless.yml reads the result (custom.managementBudget) into each
// function's concurrency cap and its MANAGEMENT_* environment, and each container paces every API
// Gateway call it makes, retries included, to sharePerSecond / concurrency with a token bucket of
// `burst` tokens (shared/aws/management-budget.ts, shared/wiring/key-gateway.ts).
//
// Why this holds when everything runs at once: a function never runs more than `concurrency`
// containers (Lambda's reserved concurrency, or the queue trigger's MaximumConcurrency), each
// makes at most sharePerSecond / concurrency calls/s, so the function makes at most sharePerSecond;
// the percents below add up to at most 100, so all functions together make at most
// managementCallsPerSecond. A static split: an idle function's share is not lent to a busy one.
import { resolveParam } from './source.js';

/** API Gateway's management quota per account and Region (DESIGN §6); it cannot be raised. */
export const ACCOUNT_CALLS_PER_SECOND = 10;
/** The same quota's burst: what all containers' buckets may hold together when they start full. */
export const ACCOUNT_BURST = 40;

/**
 * The functions that never call API Gateway's management API, so take no part of its budget: no
 * row below, no MANAGEMENT_* settings, no pacing. The packaged-template test holds each to it (its
 * role has no API Gateway grant), and test/unit/management-budget.test.ts every other function to
 * its row.
 */
export const WITHOUT_MANAGEMENT_CALLS = [
  // Reads the table's stream and puts the outbox's events on EventBridge.
  'publishEvents',
  // The read routes: the table alone.
  'customerReads',
];

/**
 * Each function's share in percent of managementCallsPerSecond, its most containers at once, and
 * the tokens a container may spend at once. `queue: true` marks a queue consumer, capped by its
 * trigger's MaximumConcurrency (2 to 1000) instead of reserved concurrency. The figures in the
 * comments are at the default budget of 10 calls/s.
 *
 * @param {{ workerConcurrency: number }} params
 */
export function managementSplit({ workerConcurrency }) {
  return {
    // The portal's synchronous registrations: a share no import can take. 3/s over 3 containers
    // (1/s each, a registration's two calls in 2 s even with an empty bucket; about 1.5
    // registrations/s in all); 3 tokens let an idle container make a registration's GetUsagePlan,
    // CreateApiKey and CreateUsagePlanKey without waiting.
    register: { percent: 30, concurrency: 3, burst: 3 },
    // Bulk imports and Prefer: respond-async, the largest share: 3.5/s (1.75 registrations/s),
    // 1.75/s per container at the default workerConcurrency of 2; a batch of 10 (at most 3 calls
    // each) fits its 60 s timeout.
    provisionWorker: { percent: 35, concurrency: workerConcurrency, burst: 2, queue: true },
    // Billing PlanChanged events: 0.5/s, 0.25/s per container, about 15 calls per 60 s
    // invocation, a batch of up to 7 one-key customers (2 calls each).
    changeTierEvents: { percent: 5, concurrency: 2, burst: 1, queue: true },
    // The sweep's 0.75/s, in its two functions. 0.5/s for resumes: the usual ones (an owed email,
    // a lost message) need one to three calls each, 100 of them fit the 300 s timeout.
    resumeRegistrations: { percent: 5, concurrency: 1, burst: 1 },
    // 0.25/s for finishing operations that died holding their lease, which is rare (a crash or a
    // timeout mid-operation): a rotation's two or three calls, a tier change's two per key.
    finishOperations: { percent: 2.5, concurrency: 1, burst: 1 },
    // 0.5/s: 75 disables and 75 deletes (one call each) fit the 300 s timeout; the hourly runs
    // take the rest (retirementBatchSize defaults to 100: a backlog takes two runs).
    retireKeys: { percent: 5, concurrency: 1, burst: 1 },
    // 0.75/s: a run of 50 rotations (2 calls each) in about 135 s of 300 s.
    rotateKeys: { percent: 7.5, concurrency: 1, burst: 1 },
    // 0.25/s: 225 calls in its 900 s (listing 10,000 keys is 20 pages).
    reconcile: { percent: 2.5, concurrency: 1, burst: 1 },
    // The HTTP routes for one customer (API Gateway waits 29 s): a burst of 2, then the share, so
    // a tier change of one key (2 calls) answers at once. Rotation and revocation on demand are
    // operator actions, one at a time; usage may be polled, so two requests may wait for tokens
    // side by side (GetUsage is a management call, one per live key).
    changeTier: { percent: 2.5, concurrency: 2, burst: 2 },
    rotateCustomer: { percent: 1.25, concurrency: 1, burst: 2 },
    revokeCustomer: { percent: 1.25, concurrency: 1, burst: 2 },
    customerUsage: { percent: 2.5, concurrency: 2, burst: 2 },
  };
}

/**
 * The split in calls per second for a budget: per function, its share (all containers), its cap
 * and each container's burst. Shares are rounded down to a millionth, so they never add up to
 * more than the budget.
 * @throws Error naming what is wrong, which fails `osls package`
 */
export function splitBudget({ managementCallsPerSecond, workerConcurrency }) {
  const budget = Number(managementCallsPerSecond);
  if (!(budget > 0 && budget <= ACCOUNT_CALLS_PER_SECOND)) {
    throw new Error(
      `param managementCallsPerSecond must be above 0 and at most ${ACCOUNT_CALLS_PER_SECOND} (API Gateway's ` +
        `management quota per account, which cannot be raised), got ${JSON.stringify(managementCallsPerSecond)}`,
    );
  }
  const split = managementSplit({ workerConcurrency: Number(workerConcurrency) });
  const percents = Object.values(split).reduce((sum, row) => sum + row.percent, 0);
  if (percents > 100) {
    throw new Error(`infra/serverless/management-budget.js gives out ${percents}% of the management budget`);
  }
  const result = {};
  for (const [name, { percent, concurrency, burst, queue = false }] of Object.entries(split)) {
    const [min, max] = queue ? [2, 1000] : [1, 1000];
    if (!Number.isInteger(concurrency) || concurrency < min || concurrency > max) {
      const what = queue ? "a queue trigger's MaximumConcurrency" : 'a reserved concurrency';
      throw new Error(`${name}: concurrency must be ${what} from ${min} to ${max}, got ${concurrency}`);
    }
    if (!(percent > 0) || !Number.isInteger(burst) || burst < 1) {
      throw new Error(`${name}: needs a percent above 0 and a burst of at least 1 token`);
    }
    result[name] = {
      sharePerSecond: Math.floor(((budget * percent) / 100) * 1e6) / 1e6,
      concurrency,
      burst,
      queue,
    };
  }
  return result;
}

/** The split of this deployment's params, for serverless.yml (custom.managementBudget). */
export async function budget({ resolveVariable }) {
  return splitBudget({
    managementCallsPerSecond: await resolveParam(resolveVariable, 'managementCallsPerSecond'),
    workerConcurrency: await resolveParam(resolveVariable, 'workerConcurrency'),
  });
}
