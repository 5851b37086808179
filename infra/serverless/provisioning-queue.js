import { deadLetterQueueId, queueWithDeadLetter } from './queues.js';
import { readShards } from './shards.js';

// Logical ids the roles, the function environment and the alarm refer to.
export const PROVISIONING_QUEUE = 'ProvisioningQueue';
export const PROVISIONING_DLQ = deadLetterQueueId(PROVISIONING_QUEUE);
const WORKER = 'provisionWorker';

/**
 * The provisioning queue of each shard of infra/shards.json but the home one (whose queue is
 * ProvisioningQueue): `Provisioning<Shard>Queue`, named `...-provisioning-<shard>`. With one queue
 * for all shards, a worker batch mixes shards and waits for its busiest one while the others'
 * budgets sit idle (docs/benchmark.md, figure 7); with one per shard, a batch holds one shard's
 * registrations. None for one shard.
 * @returns {Array<{ shard: string, queueId: string }>}
 */
export function shardProvisioningQueues() {
  return readShards()
    .slice(1)
    .map(({ id }) => ({ shard: id, queueId: `Provisioning${id.charAt(0).toUpperCase()}${id.slice(1)}Queue` }));
}

/** Every provisioning queue's logical id, the home shard's first: what register sends to and the worker reads. */
export const provisioningQueueIds = () => [PROVISIONING_QUEUE, ...shardProvisioningQueues().map(({ queueId }) => queueId)];

/**
 * QUEUE_URLS for register (shared/config.ts): shard id -> its own queue's URL, or no setting at
 * all for one shard, as SHARDS (shards.js).
 */
export function queueUrls() {
  const queues = shardProvisioningQueues();
  if (queues.length === 0) return { Ref: 'AWS::NoValue' };
  // Fn::Sub's ${LogicalId} is the queue's Ref, its URL.
  return { 'Fn::Sub': JSON.stringify(Object.fromEntries(queues.map(({ shard, queueId }) => [shard, `\${${queueId}}`]))) };
}

const alarmDescription = (queue) => `
  Async registrations failed 5 deliveries in a row and were moved to the dead-letter queue
  {dlq}: those customers have no key yet. Read the messages and the provisionWorker logs (by
  registrationId) to find the cause, fix it, then redrive the DLQ to ${queue}
  (SQS StartMessageMoveTask, or "Start DLQ redrive" in the console). The saga is idempotent,
  so a redriven message never makes a second key.`;

/**
 * The queue of async registrations (DESIGN §1), its dead-letter queue and the alarm on it; with
 * shards, the same for each other shard's own queue, and its trigger of provisionWorker.
 */
export async function resources({ resolveVariable }) {
  const home = await queueWithDeadLetter(resolveVariable, {
    queueId: PROVISIONING_QUEUE,
    name: 'provisioning',
    consumer: WORKER,
    alarmDescription: alarmDescription('the provisioning queue'),
  });
  const shardQueues = shardProvisioningQueues();
  if (shardQueues.length === 0) return home;
  const trigger = await homeTrigger(resolveVariable);
  const Resources = { ...home.Resources };
  const Outputs = { ...home.Outputs };
  for (const { shard, queueId } of shardQueues) {
    const queue = await queueWithDeadLetter(resolveVariable, {
      queueId,
      name: `provisioning-${shard}`,
      consumer: WORKER,
      alarmDescription: alarmDescription(`the provisioning queue of shard ${shard}`),
    });
    Object.assign(Resources, queue.Resources, { [`ProvisionWorkerEventSourceMappingSQS${queueId}`]: triggerOf(queueId, trigger) });
    Object.assign(Outputs, queue.Outputs);
  }
  return { Resources, Outputs };
}

/**
 * provisionWorker's `sqs` event on the home queue in serverless.yml: every shard queue's trigger
 * takes its batch size, batching window, response type and MaximumConcurrency, so they cannot
 * drift apart. Each trigger runs at most MaximumConcurrency containers at once, so each shard's
 * registrations are worked by as many containers as before, each pacing to share / that in the
 * shard (management-budget.js).
 */
async function homeTrigger(resolveVariable) {
  const events = (await resolveVariable(`self:functions.${WORKER}.events`)) ?? [];
  const sqs = events.map((event) => event?.sqs).find((event) => event?.arn?.['Fn::GetAtt']?.[0] === PROVISIONING_QUEUE);
  if (!sqs) throw new Error(`functions.${WORKER} has no sqs event on ${PROVISIONING_QUEUE}: the shard queues copy its settings`);
  const maximumConcurrency = Number(sqs.maximumConcurrency);
  if (!Number.isInteger(maximumConcurrency)) {
    throw new Error(`functions.${WORKER}'s sqs event needs a maximumConcurrency, got ${sqs.maximumConcurrency}`);
  }
  // The framework's mapping waits for the function's role, which grants the polling.
  const role = await resolveVariable(`self:functions.${WORKER}.role`);
  return { ...sqs, maximumConcurrency, role };
}

/** The event source mapping the framework makes of an `sqs` event, on another queue. */
const triggerOf = (queueId, sqs) => ({
  Type: 'AWS::Lambda::EventSourceMapping',
  DependsOn: [sqs.role],
  Properties: {
    BatchSize: Number(sqs.batchSize ?? 10),
    ...(sqs.maximumBatchingWindow === undefined ? {} : { MaximumBatchingWindowInSeconds: Number(sqs.maximumBatchingWindow) }),
    EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
    FunctionName: { 'Fn::GetAtt': ['ProvisionWorkerLambdaFunction', 'Arn'] },
    Enabled: true,
    ...(sqs.functionResponseType === undefined ? {} : { FunctionResponseTypes: [sqs.functionResponseType] }),
    ScalingConfig: { MaximumConcurrency: sqs.maximumConcurrency },
  },
});
