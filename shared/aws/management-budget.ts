import type { APIGatewayClient } from '@aws-sdk/client-api-gateway';

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

const paced = new WeakSet<APIGatewayClient>();

/**
 * Paces every attempt of every API Gateway call the client makes, retries included (the bucket
 * sits below the SDK's retry layer), to this container's share of the account's management
 * budget. With the function's concurrency cap as the number of containers, each function, and so
 * all of them together (infra/serverless/management-budget.js), stays within its share by
 * construction instead of by throttling. A client already paced keeps its bucket: the
 * composition functions build on one another and may each ask.
 */
export function paceManagementCalls(clients: APIGatewayClient[], bucket: TokenBucket): void {
  for (const client of clients) {
    if (paced.has(client)) continue;
    paced.add(client);
    client.middlewareStack.add(
      (next) => async (args) => {
        await bucket.take();
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'keyplanManagementBudget' },
    );
  }
}
