import { resolveParam } from './source.js';
import { deadLetterQueueId, queueWithDeadLetter } from './queues.js';

// Logical ids the role, the trigger and the tests refer to.
export const TIER_CHANGES_QUEUE = 'TierChangesQueue';
export const TIER_CHANGES_DLQ = deadLetterQueueId(TIER_CHANGES_QUEUE);
export const PLAN_CHANGED_RULE = 'PlanChangedRule';
const PLAN_CHANGED = 'PlanChanged';

/**
 * The billing system's PlanChanged events on the account's default bus go to a queue that
 * changeTierEvents consumes: the queue absorbs bursts and retries a busy customer, and its DLQ
 * keeps what failed 5 times (with the alarm of every DLQ).
 */
export async function resources({ resolveVariable }) {
  const source = String(await resolveParam(resolveVariable, 'billingEventSource'));
  // EventBridge rejects PutEvents with an aws.* source from callers, so such a rule never matches.
  if (!source || source.startsWith('aws.')) {
    throw new Error(`param billingEventSource must name the billing system's event source, got "${source}"`);
  }

  const queue = await queueWithDeadLetter(resolveVariable, {
    queueId: TIER_CHANGES_QUEUE,
    name: 'tier-changes',
    consumer: 'changeTierEvents',
    alarmDescription: `
      PlanChanged events failed 5 deliveries in a row and were moved to the dead-letter queue
      {dlq}: those customers' keys are still in their old tier's plan. Read the messages and the
      changeTierEvents logs (by messageId) to find the cause, fix it, then redrive the DLQ to the
      tier-changes queue (SQS StartMessageMoveTask, or "Start DLQ redrive" in the console). A
      redriven event sets the tier it names, even if a later event already set another: check the
      customer's current plan in billing before redriving an old one.`,
  });

  return {
    Resources: {
      ...queue.Resources,
      [PLAN_CHANGED_RULE]: {
        Type: 'AWS::Events::Rule',
        Properties: {
          Description: `${PLAN_CHANGED} events of ${source}, to the tier-changes queue`,
          EventBusName: 'default',
          EventPattern: { source: [source], 'detail-type': [PLAN_CHANGED] },
          State: 'ENABLED',
          Targets: [{ Id: 'TierChangesQueue', Arn: { 'Fn::GetAtt': [TIER_CHANGES_QUEUE, 'Arn'] } }],
        },
      },
      // EventBridge sends with its service principal, so the queue must admit it, and only for
      // this rule (another rule in the account could otherwise feed the queue anything).
      TierChangesQueuePolicy: {
        Type: 'AWS::SQS::QueuePolicy',
        Properties: {
          Queues: [{ Ref: TIER_CHANGES_QUEUE }],
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'PlanChangedRuleSends',
                Effect: 'Allow',
                Principal: { Service: 'events.amazonaws.com' },
                Action: 'sqs:SendMessage',
                Resource: { 'Fn::GetAtt': [TIER_CHANGES_QUEUE, 'Arn'] },
                Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [PLAN_CHANGED_RULE, 'Arn'] } } },
              },
            ],
          },
        },
      },
    },
    Outputs: queue.Outputs,
  };
}
