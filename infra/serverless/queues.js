// A Lambda-triggering queue with its dead-letter queue and the alarm on it, the same for every
// queue of the service (provisioning, tier changes), and the same DLQ and alarm for the table
// stream's consumer (lifecycle-events.js).

// Lambda's advice for a queue trigger: a visibility timeout of at least six times the function
// timeout, so a message is not delivered again while a batch holding it is still being handled,
// and a throttled invocation can be retried before the message reappears.
const VISIBILITY_TIMEOUTS_PER_CONSUMER_TIMEOUT = 6;
// A message that failed this often is poison (retryable failures succeed well before).
const MAX_RECEIVE_COUNT = 5;
// SQS's maximum: time to find the cause and redrive.
const DLQ_RETENTION_SECONDS = 14 * 24 * 60 * 60;

/**
 * The queue `<service>-<stage>-<name>`, its DLQ `...-<name>-dlq`, and an alarm to the alarms topic
 * (alarms.yml) as soon as one message is dead-lettered. The visibility timeout is derived from the
 * consumer's `timeout` in serverless.yml, so the two cannot drift apart.
 *
 * @param {object} queue
 * @param {string} queue.queueId logical id of the queue; the DLQ is `<...>DeadLetterQueue`
 * @param {string} queue.name the name after `<service>-<stage>-`
 * @param {string} queue.consumer the function in serverless.yml the queue triggers
 * @param {string} queue.alarmDescription what a dead-lettered message means and what to do;
 *   `{dlq}` stands for the DLQ's name
 */
export async function queueWithDeadLetter(resolveVariable, { queueId, name, consumer, alarmDescription }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const consumerTimeout = Number(await resolveVariable(`self:functions.${consumer}.timeout`));
  if (!Number.isInteger(consumerTimeout) || consumerTimeout <= 0) {
    throw new Error(`functions.${consumer}.timeout must be a whole number of seconds, got ${consumerTimeout}`);
  }
  const dlqId = deadLetterQueueId(queueId);

  return {
    Resources: {
      [queueId]: {
        Type: 'AWS::SQS::Queue',
        Properties: {
          QueueName: `${service}-${stage}-${name}`,
          VisibilityTimeout: VISIBILITY_TIMEOUTS_PER_CONSUMER_TIMEOUT * consumerTimeout,
          RedrivePolicy: {
            deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] },
            maxReceiveCount: MAX_RECEIVE_COUNT,
          },
          // Messages hold customer data. SQS-managed keys need no KMS permissions in the roles,
          // and EventBridge can send to them (an AWS managed KMS key would refuse it).
          SqsManagedSseEnabled: true,
        },
      },
      ...deadLetterQueue({ service, stage, dlqId, name, alarmDescription }),
    },
    Outputs: {
      [`${queueId}Url`]: { Value: { Ref: queueId } },
      [`${dlqId}Url`]: { Value: { Ref: dlqId } },
    },
  };
}

/**
 * A dead-letter queue `<service>-<stage>-<name>-dlq` (messages kept 14 days, SQS-managed
 * encryption) and its alarm `...-dlq-not-empty` to the alarms topic (alarms.yml) as soon as one
 * message is in it, and again when it is drained. Every DLQ of the service is made here: the
 * queues' above, and the one the table stream's consumer sends what it gave up on to
 * (lifecycle-events.js).
 *
 * @param {object} dlq
 * @param {string} dlq.dlqId logical id of the DLQ; the alarm's is `<dlqId without Queue>Alarm`
 * @param {string} dlq.alarmDescription what a message there means and what to do; `{dlq}` stands
 *   for the DLQ's name
 * @returns the two resources, by logical id
 */
export function deadLetterQueue({ service, stage, dlqId, name, alarmDescription }) {
  const dlqName = `${service}-${stage}-${name}-dlq`;
  return {
    [dlqId]: {
      Type: 'AWS::SQS::Queue',
      Properties: {
        QueueName: dlqName,
        MessageRetentionPeriod: DLQ_RETENTION_SECONDS,
        SqsManagedSseEnabled: true,
      },
    },
    [`${dlqId.replace(/Queue$/, '')}Alarm`]: {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${dlqName}-not-empty`,
        AlarmDescription: alarmDescription.replace(/\s+/g, ' ').trim().replaceAll('{dlq}', dlqName),
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }],
        Statistic: 'Maximum',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        // An idle queue publishes no datapoints at times; no data means nothing dead-lettered.
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: 'AlarmTopic' }],
        // Also tell the operator when the DLQ has been drained.
        OKActions: [{ Ref: 'AlarmTopic' }],
      },
    },
  };
}

/** ProvisioningQueue -> ProvisioningDeadLetterQueue. */
export const deadLetterQueueId = (queueId) => `${queueId.replace(/Queue$/, '')}DeadLetterQueue`;
