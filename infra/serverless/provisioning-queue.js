// Logical ids the roles, the function environment and the alarm refer to.
export const PROVISIONING_QUEUE = 'ProvisioningQueue';
export const PROVISIONING_DLQ = 'ProvisioningDeadLetterQueue';

// Lambda's advice for a queue trigger: a visibility timeout of at least six times the function
// timeout, so a message is not delivered again while a batch holding it is still being handled,
// and a throttled invocation can be retried before the message reappears.
const VISIBILITY_TIMEOUTS_PER_WORKER_TIMEOUT = 6;
// A message that failed this often is poison (retryable failures resume the saga well before).
const MAX_RECEIVE_COUNT = 5;
// SQS's maximum: time to find the cause and redrive.
const DLQ_RETENTION_SECONDS = 14 * 24 * 60 * 60;

/**
 * The queue of async registrations (DESIGN §1) and its dead-letter queue. The visibility timeout
 * is derived from the worker's `timeout` in serverless.yml, so the two cannot drift apart.
 */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const workerTimeout = Number(await resolveVariable('self:functions.provisionWorker.timeout'));
  if (!Number.isInteger(workerTimeout) || workerTimeout <= 0) {
    throw new Error(`functions.provisionWorker.timeout must be a whole number of seconds, got ${workerTimeout}`);
  }

  return {
    Resources: {
      [PROVISIONING_QUEUE]: {
        Type: 'AWS::SQS::Queue',
        Properties: {
          QueueName: `${service}-${stage}-provisioning`,
          VisibilityTimeout: VISIBILITY_TIMEOUTS_PER_WORKER_TIMEOUT * workerTimeout,
          RedrivePolicy: {
            deadLetterTargetArn: { 'Fn::GetAtt': [PROVISIONING_DLQ, 'Arn'] },
            maxReceiveCount: MAX_RECEIVE_COUNT,
          },
          // Messages hold customer emails. SQS-managed keys need no KMS permissions in the roles.
          SqsManagedSseEnabled: true,
        },
      },
      [PROVISIONING_DLQ]: {
        Type: 'AWS::SQS::Queue',
        Properties: {
          QueueName: `${service}-${stage}-provisioning-dlq`,
          MessageRetentionPeriod: DLQ_RETENTION_SECONDS,
          SqsManagedSseEnabled: true,
        },
      },
    },
    Outputs: {
      ProvisioningQueueUrl: { Value: { Ref: PROVISIONING_QUEUE } },
      ProvisioningDeadLetterQueueUrl: { Value: { Ref: PROVISIONING_DLQ } },
    },
  };
}
