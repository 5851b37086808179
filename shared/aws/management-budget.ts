import type { MiddlewareStack } from '@smithy/types';
import type { ApiGatewaySender } from './api-key-gateway';

/**
 * A token bucket: `ratePerSecond` on average, at most `burst` at once. `take` waits for a token
 * (our pacing); `tryTake` refuses when there is none (how API Gateway treats the account's callers,
 * which the bench's budget proxy imitates).
 */
export class TokenBucket {
  #tokens: number;
  #updatedAt: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#tokens = burst;
    this.#updatedAt = now();
  }

  async take(): Promise<void> {
    while (!this.tryTake()) {
      await new Promise((resolve) => setTimeout(resolve, ((1 - this.#tokens) / this.ratePerSecond) * 1000));
    }
  }

  tryTake(): boolean {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#updatedAt) / 1000) * this.ratePerSecond);
    this.#updatedAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyCommand = { middlewareStack: MiddlewareStack<any, any> };

/**
 * A paced view of the client: every attempt of every API Gateway call sent through it, retries
 * included, first takes a token from `bucket`, this container's share of the account's management
 * budget. With the function's concurrency cap as the number of containers, each function, and so
 * all of them together (infra/serverless/management-budget.js), stays within its share by
 * construction instead of by throttling.
 *
 * The wait is added to each command's own middleware stack, below the SDK's retry layer (the
 * client's stack and the command's are merged and ordered by step and priority when it is sent),
 * so the client itself is left as it was: whoever else holds it is not paced, and views over one
 * client with different buckets do not meet.
 */
export function pacedClient(client: ApiGatewaySender, bucket: TokenBucket): ApiGatewaySender {
  const send = (command: AnyCommand, ...rest: unknown[]): unknown => {
    command.middlewareStack.add(
      (next) => async (args) => {
        await bucket.take();
        return next(args);
      },
      // override: a command sent twice is paced once per attempt, not twice.
      { step: 'finalizeRequest', priority: 'low', name: 'keyplanManagementBudget', override: true },
    );
    return Reflect.apply(client.send, client, [command, ...rest]);
  };
  return { send: send as ApiGatewaySender['send'] };
}
