import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logger } from './logger';

/**
 * Metrics' own complaints go to the structured log, except the one about an invocation that
 * counted nothing: most requests count nothing, and a warning each time would bury real ones.
 */
const metricsLogger = {
  trace: (...args: unknown[]) => logger.trace(String(args[0])),
  debug: (...args: unknown[]) => logger.debug(String(args[0])),
  info: (...args: unknown[]) => logger.info(String(args[0])),
  error: (...args: unknown[]) => logger.error(String(args[0])),
  warn: (...args: unknown[]) => {
    const message = String(args[0]);
    if (message.startsWith('No application metrics to publish')) logger.debug(message);
    else logger.warn(message);
  },
};

/**
 * The one metrics buffer, written as CloudWatch embedded-metric-format (EMF) lines to the function's
 * log at the end of each invocation (logMetrics in the handlers), so metrics cost no API call. The
 * namespace is shared by every stage; the `service` dimension (POWERTOOLS_SERVICE_NAME, which the
 * deploy sets to <service>-<stage>) keeps the stages apart, and the alarms filter on it.
 */
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'keyplan',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keyplan',
  logger: metricsLogger,
});

/** Every metric keyplan emits; the alarms and the README's runbook refer to these names. */
export const METRIC = {
  keysProvisioned: 'KeysProvisioned',
  rollbacks: 'Rollbacks',
  /** A key left behind because even its rollback failed: the reconciler deletes it. */
  orphansRecorded: 'OrphansRecorded',
  emailsFailed: 'EmailsFailed',
  rotations: 'Rotations',
  keysDisabled: 'KeysDisabled',
  keysDeleted: 'KeysDeleted',
  tierChanges: 'TierChanges',
  tierChangesFailed: 'TierChangesFailed',
  keysNeedingRepair: 'KeysNeedingRepair',
  revocations: 'Revocations',
  /** Throttled AWS calls (each attempt), whatever the retry made of them. */
  throttles: 'Throttles',
  accountKeyCount: 'AccountKeyCount',
  orphansDeleted: 'OrphansDeleted',
  keysRepaired: 'KeysRepaired',
  recordsMissing: 'RecordsMissing',
  reconcileFailures: 'ReconcileFailures',
  /** Registrations the resume sweep gave up on: an operator must look at them. */
  registrationsAbandoned: 'RegistrationsAbandoned',
} as const;
export type MetricName = (typeof METRIC)[keyof typeof METRIC];

export function countMetric(name: MetricName, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}
