// Lifecycle events (DESIGN §9): the table's stream feeds publishEvents, which puts the outbox's
// events on EventBridge. What Lambda gives up on (a batch that failed maximumRetryAttempts times)
// is described in a message to this dead-letter queue, with the alarm every DLQ has (queues.js).
import { deadLetterQueue } from './queues.js';
import { resolveParam } from './source.js';

// Logical ids the trigger, the role and the tests refer to.
export const EVENTS_DLQ = 'LifecycleEventsDeadLetterQueue';

/**
 * The `source` of every lifecycle event of a stage: `<service>.<stage>` (keyplan.prod). The
 * function's EVENT_SOURCE and its role's condition both come from here.
 */
export const eventSourceOf = (service, stage) => `${service}.${stage}`;

/** The bus of param eventBusName (a name or an ARN) as the ARN IAM names it. */
export function eventBusArn(bus) {
  if (!bus) throw new Error('param eventBusName must name an event bus (default: default)');
  if (bus.startsWith('arn:')) return bus;
  return { 'Fn::Sub': `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:event-bus/${bus}` };
}

/** The stream's dead-letter queue `keyplan-<stage>-events-dlq` and its alarm. */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  // Refused here rather than at deploy time: the role's grant is built from it.
  eventBusArn(String(await resolveParam(resolveVariable, 'eventBusName')));
  return {
    Resources: deadLetterQueue({
      service,
      stage,
      dlqId: EVENTS_DLQ,
      name: 'events',
      alarmDescription: `
        Lifecycle events were not published to EventBridge: Lambda retried a batch of the table's
        stream 10 times, then skipped it and put its description (shard, first and last sequence
        numbers) in {dlq}. The events are still in each customer's audit trail (the table's EVENT#
        items, kept 400 days; npx keyplan history CUSTOMER), but the bus's consumers did not get
        them. Find the cause in the publishEvents logs ("stream record failed", "event bus refused
        events"): an IAM or bus change, or an item that is no event. Fix it, then tell the
        consumers to catch up from the audit trail; there is no republish command yet.`,
    }),
    Outputs: { [`${EVENTS_DLQ}Url`]: { Value: { Ref: EVENTS_DLQ } } },
  };
}
