import { TokenBucket } from '../shared/aws/management-budget';
import { type FaultProxy, type FaultRule, startFaultProxy } from '../test/support/fault-proxy';

/** API Gateway's management API: 10 requests/s per account, burst 40, for every caller (DESIGN §6). */
export const ACCOUNT_MANAGEMENT_BUDGET = { ratePerSecond: 10, burst: 40 } as const;

/**
 * The bucket keyplan paces with, refusing rather than waiting, as API Gateway does: `burst` calls
 * at once, then `ratePerSecond` on average; a call that finds no token is answered 429.
 */
export class RefusingBucket {
  readonly #bucket: TokenBucket;
  admitted = 0;
  refused = 0;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    now: () => number = Date.now,
  ) {
    this.#bucket = new TokenBucket(ratePerSecond, burst, now);
  }

  tryTake(): boolean {
    const taken = this.#bucket.tryTake();
    if (taken) this.admitted++;
    else this.refused++;
    return taken;
  }
}

/** When each management call reached the account, and whether the budget admitted it: for counting per window. */
export class ManagementCallLog {
  readonly admitted: number[] = [];
  readonly refused: number[] = [];

  record(admitted: boolean, at: number = Date.now()): void {
    (admitted ? this.admitted : this.refused).push(at);
  }

  /** Every call that reached the account, admitted or not, in arrival order. */
  get all(): number[] {
    return [...this.admitted, ...this.refused].sort((a, b) => a - b);
  }
}

/**
 * The account budget as a rule of the test suite's fault proxy (test/support/fault-proxy.ts): every
 * API Gateway call draws a token, and one that finds none gets the proxy's throttle answer (429
 * TooManyRequestsException, API Gateway's wire shape). The proxy asks the rule's predicate once per
 * API Gateway call, which is what makes it a bucket; `log`, if given, learns of each call.
 */
export function managementBudgetRule(bucket: RefusingBucket, log?: ManagementCallLog): FaultRule {
  return {
    name: 'api-gateway management budget',
    service: 'apigateway',
    operation: () => {
      const admitted = bucket.tryTake();
      log?.record(admitted);
      return !admitted;
    },
    fault: { kind: 'throttle' },
  };
}

export interface BudgetProxy {
  proxy: FaultProxy;
  bucket: RefusingBucket;
  /** Every management call the proxy saw, with its time. */
  calls: ManagementCallLog;
}

/** A proxy in front of the emulator that enforces the account's management budget and nothing else. */
export async function startBudgetProxy(
  target: string,
  budget: { ratePerSecond: number; burst: number } = ACCOUNT_MANAGEMENT_BUDGET,
): Promise<BudgetProxy> {
  const bucket = new RefusingBucket(budget.ratePerSecond, budget.burst);
  const calls = new ManagementCallLog();
  const proxy = await startFaultProxy({ target, rules: [managementBudgetRule(bucket, calls)] });
  return { proxy, bucket, calls };
}
