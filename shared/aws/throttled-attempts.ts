import type { MiddlewareStack } from '@smithy/types';
import { countMetric, countShardMetric } from '../metrics';
import { isThrottling } from './aws-errors';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = { middlewareStack: MiddlewareStack<any, any> };

/**
 * Counts every throttled attempt, including those the SDK's retries then got through: a rising
 * count is the early sign of a budget shared with too many callers, well before calls fail.
 * Below the retry middleware (same step, lower priority), so it sees each attempt. Every client
 * factory (clients.ts, event-bus-client.ts) adds it.
 */
export function countThrottledAttempts<C extends AnyClient>(client: C, shard?: string): C {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (!isThrottling(error)) throw error;
        if (shard) countShardMetric('Throttles', shard);
        else countMetric('Throttles');
        throw error;
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: 'keyplanCountThrottles' },
  );
  return client;
}
