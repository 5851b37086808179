import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { logger } from './logger';
import { metrics } from './metrics';

/**
 * The middleware every function handler starts with: the Lambda context on every log line, and the
 * invocation's metrics flushed as one EMF line when it ends (with a ColdStart count on the first).
 */
export function observe() {
  return [injectLambdaContext(logger), logMetrics(metrics, { captureColdStartMetric: true })];
}
