// Alarms on keyplan's own metrics (shared/metrics.ts: EMF lines in the function logs, namespace
// `keyplan`, dimension `service` = <service>-<stage>), to the alarms topic (alarms.yml). The
// README's runbook says what each one means and what to do.

import { readShards } from './shards.js';

const ALARMS = [
  {
    id: 'RollbacksAlarm',
    suffix: 'rollbacks',
    metric: 'Rollbacks',
    statistic: 'Sum',
    period: 300,
    threshold: 1,
    description:
      'API Gateway refused to put a new key into its usage plan, and the key was deleted again: the registration is FAILED (failureReason association-rejected). Usually a plan that is gone or a key already in another plan of the stage.',
  },
  {
    id: 'KeyCeilingAlarm',
    suffix: 'key-ceiling',
    metric: 'AccountKeyCount',
    statistic: 'Maximum',
    // The reconciler counts once a day; the alarm keeps its state between counts.
    period: 3600,
    threshold: 8000,
    treatMissingData: 'ignore',
    description:
      'The account holds 80% or more of the 10,000 API keys API Gateway allows per Region (not adjustable; disabled keys count until deleted). New registrations fail at the ceiling.',
  },
  {
    id: 'RegistrationsAbandonedAlarm',
    suffix: 'registrations-abandoned',
    metric: 'RegistrationsAbandoned',
    statistic: 'Sum',
    period: 900,
    threshold: 1,
    description:
      'The resume sweep gave up on a registration after 10 attempts (about three days): its customer may have no key, or no email. Its registrationId is in the resumeRegistrations log.',
  },
  {
    id: 'ReconcileFailuresAlarm',
    suffix: 'reconcile-failures',
    metric: 'ReconcileFailures',
    statistic: 'Sum',
    period: 3600,
    threshold: 1,
    description:
      'The reconciler could not repair a key (delete an orphan, or move a key into the plan of its tier). The failed actions are in the reconcile log; the next run tries again.',
  },
];

export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const Resources = {};
  for (const alarm of ALARMS) {
    Resources[alarm.id] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${service}-${stage}-${alarm.suffix}`,
        AlarmDescription: alarm.description,
        Namespace: 'keyplan',
        MetricName: alarm.metric,
        Dimensions: [{ Name: 'service', Value: `${service}-${stage}` }],
        Statistic: alarm.statistic,
        Period: alarm.period,
        EvaluationPeriods: 1,
        Threshold: alarm.threshold,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: alarm.treatMissingData ?? 'notBreaching',
        AlarmActions: [{ Ref: 'AlarmTopic' }],
      },
    };
  }
  // With shards, one key-ceiling alarm per shard (dimension shard), at 70% of its ceiling: before
  // its high-water mark (default 80%), where placement stops sending it new customers.
  for (const shard of readShards()) {
    const ceiling = shard.keyCeiling ?? 10000;
    const id = `KeyCeilingAlarmShard${shard.id.charAt(0).toUpperCase()}${shard.id.slice(1)}`;
    Resources[id] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${service}-${stage}-key-ceiling-${shard.id}`,
        AlarmDescription: `Shard ${shard.id} holds 70% or more of its ${ceiling} API keys; at its high-water mark (${shard.highWaterPercent ?? 80}%) it takes no new customer. Add a shard or drain this one (docs/capacity.md).`,
        Namespace: 'keyplan',
        MetricName: 'AccountKeyCount',
        Dimensions: [
          { Name: 'service', Value: `${service}-${stage}` },
          { Name: 'shard', Value: shard.id },
        ],
        Statistic: 'Maximum',
        Period: 3600,
        EvaluationPeriods: 1,
        Threshold: Math.floor(ceiling * 0.7),
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'ignore',
        AlarmActions: [{ Ref: 'AlarmTopic' }],
      },
    };
  }
  return { Resources };
}
