import { deadLetterQueueId, queueWithDeadLetter } from './queues.js';

// Logical ids the roles, the function environment and the alarm refer to.
export const PROVISIONING_QUEUE = 'ProvisioningQueue';
export const PROVISIONING_DLQ = deadLetterQueueId(PROVISIONING_QUEUE);

/** The queue of async registrations (DESIGN §1), its dead-letter queue and the alarm on it. */
export async function resources({ resolveVariable }) {
  return queueWithDeadLetter(resolveVariable, {
    queueId: PROVISIONING_QUEUE,
    name: 'provisioning',
    consumer: 'provisionWorker',
    alarmDescription: `
      Async registrations failed 5 deliveries in a row and were moved to the dead-letter queue
      {dlq}: those customers have no key yet. Read the messages and the provisionWorker logs (by
      registrationId) to find the cause, fix it, then redrive the DLQ to the provisioning queue
      (SQS StartMessageMoveTask, or "Start DLQ redrive" in the console). The saga is idempotent,
      so a redriven message never makes a second key.`,
  });
}
