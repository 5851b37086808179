// Figure 7 (issue 15), one point: a bulk load over `shards` shards, worked as figure 4 works it.
// Registrations are queued as `Prefer: respond-async` and `npm run import` queue them
// (enqueueRegistration, which places each customer on a shard and sends it to that shard's
// provisioning queue, as deployed: the home shard's QUEUE_URL, each other shard's own in
// QUEUE_URLS); the provisioning worker's containers work each queue (as many per queue as its
// trigger's MaximumConcurrency, so a batch holds one shard's registrations), each built by the handler
// module from the environment serverless.yml gives it (bench/deployed-functions.ts), with the
// local stack's shard list (infra/local/bootstrap.ts: `home`, then `west` in another Region of the
// same account, then `acct2` in another account, reached through their roles). Every call goes
// through bench/shard-budget-proxy.ts, which enforces API Gateway's budget (10/s, burst 40, 429
// beyond it) per account and Region: each shard has its own, as in AWS. With one shard the worker
// is exactly figure 4's (no shard list: today's deployment).
import { randomUUID } from 'node:crypto';
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { bootstrapLocalStack, functionEnvironment, type LocalShard, type LocalStack } from '../infra/local/bootstrap';
import { loadConfig } from '../shared/config';
import { clientsAt } from '../test/support/aws-test-clients';
import { createQueuePair, queueDepth } from '../test/support/emulator-probe';
import { sentEmails, ShardProbe } from '../test/support/shard-probe';
import { ACCOUNT_MANAGEMENT_BUDGET } from './budget-proxy';
import { shareOf } from './budget-figures';
import { childMain, progress } from './child';
import { matchDeployedQueue, readDeployedFunctions, STACK_ENVIRONMENT } from './deployed-functions';
import { batchMix, type ScaleOutPoint, type ScaleOutShard, shardsLimit } from './scale-out-figures';
import { budgetKey, MOTO_DEFAULT_ACCOUNT, startShardBudgetProxy } from './shard-budget-proxy';
import { round } from './stats';
import { queueRegistrations } from './queued-registrations';
import { type DrainedQueue, drainWithWorkers, type WorkerHandler } from './worker-drain';

export interface ScaleOutInput {
  endpoint: string;
  registrations: number;
  shards: number;
  /**
   * `deployed`: the worker's share of each shard's budget as serverless.yml sets it (figure 4's).
   * `account`: the worker alone with each shard's whole budget (MANAGEMENT_SHARE_PER_SECOND = the
   * budget of all functions), what a shard allows when nothing else calls API Gateway there.
   */
  share: 'deployed' | 'account';
  /** Default: three times what the shards' budgets need at the worker's share, at least two minutes. */
  timeoutSeconds?: number;
}


async function measurePoint(input: ScaleOutInput): Promise<ScaleOutPoint> {
  const { endpoint, registrations, shards } = input;
  const run = randomUUID().slice(0, 8);
  const stack = await bootstrapLocalStack({ endpoint, tableName: `bench-scale-out-${shards}`, shards });
  const stackEnv = { ...functionEnvironment(stack), KEY_NAME_PREFIX: `bench-scaleout${shards}-${run}` };
  // The worker as serverless.yml deploys it (MANAGEMENT_* included), with the stack's own shard list.
  const { provisionWorker: deployed } = await readDeployedFunctions(['provisionWorker'], {
    skip: new Set([...Object.keys(stackEnv), ...STACK_ENVIRONMENT, 'SHARDS', 'QUEUE_URLS']),
  });
  if (!deployed) throw new Error('serverless.yml defines no provisionWorker');
  const proxy = await startShardBudgetProxy(endpoint, ACCOUNT_MANAGEMENT_BUDGET);
  // Created through the proxy, the queue's URL names the proxy: the workers reach it through it.
  const viaProxy = clientsAt(proxy.endpoint);
  // One provisioning queue per shard, as deployed: the home shard's (QUEUE_URL), then each other
  // shard's own (QUEUE_URLS); one shard has the one queue of figure 4.
  const locations = shardsOf(stack);
  const queues: ShardQueue[] = [];
  for (const [index, shard] of locations.entries()) {
    const name = index === 0 ? `bench-scale-out-${shards}-${run}` : `bench-scale-out-${shards}-${run}-${shard.id}`;
    queues.push({ shard: shard.id, ...(await createQueuePair(viaProxy.sqs, name)) });
  }
  let visibilityTimeout: number | undefined;
  for (const { queueUrl } of queues) visibilityTimeout = await matchDeployedQueue(viaProxy.sqs, queueUrl, deployed.queue);
  const [home, ...others] = queues;
  const env: Record<string, string> = { ...stackEnv, ...deployed.environment, AWS_ENDPOINT_URL: proxy.endpoint, QUEUE_URL: home!.queueUrl };
  delete env.QUEUE_URLS;
  if (others.length > 0) env.QUEUE_URLS = JSON.stringify(Object.fromEntries(others.map((queue) => [queue.shard, queue.queueUrl])));
  delete process.env.QUEUE_URLS;
  if (input.share === 'account') {
    env.MANAGEMENT_SHARE_PER_SECOND = env.MANAGEMENT_CALLS_PER_SECOND ?? String(ACCOUNT_MANAGEMENT_BUDGET.ratePerSecond);
    // The worker alone: its burst as the configuration derives it from its share (share / containers,
    // 5 a container), not the 2 the deployed split gives it beside ten other functions.
    delete env.MANAGEMENT_BURST;
    delete process.env.MANAGEMENT_BURST;
  }
  Object.assign(process.env, env);
  const config = loadConfig();
  const worker = shareOf(config, deployed.concurrency);
  const limit = shardsLimit(shards, worker.sharePerSecond);
  const timeoutSeconds = input.timeoutSeconds ?? Math.max(120, Math.ceil((registrations / limit) * 3));
  progress(
    `${shards} shard(s) (${locations.map((shard) => `${shard.id}: ${budgetKey(budgetOf(shard, stack))}`).join(', ')}); worker: ` +
      `${worker.containers} containers per shard queue, ${worker.sharePerSecond} calls/s in each shard (burst ${worker.burst} a container): at most ` +
      `${round(limit, 3)} registrations/s; timeout ${timeoutSeconds} s`,
  );

  const { customers, enqueueSeconds } = await queueRegistrations(config, { label: 'so', run, registrations });

  // One handler module per container: each builds its own clients and per-shard buckets at init.
  // Each shard queue's trigger runs its own containers (MaximumConcurrency per event source
  // mapping), so a shard's calls come from that many containers at once, each at share / that.
  const handlerUrl = new URL('../functions/provision-worker/handler.ts', import.meta.url).href;
  const drained: DrainedQueue[] = [];
  for (const { shard, queueUrl } of queues) {
    const handlers: WorkerHandler[] = [];
    for (let container = 1; container <= worker.containers; container++) {
      const module = (await import(`${handlerUrl}?queue=${shard}&container=${container}`)) as { handler: WorkerHandler };
      handlers.push(module.handler);
    }
    drained.push({ queueUrl, handlers });
  }

  /** When each registration's message was acknowledged, for each shard's own pace. */
  const acknowledgedAt = new Map<string, number>();
  /** The registrations of each batch a container was handed, to see how batches fell over the shards. */
  const batches: string[][] = [];
  const { started, seconds, timedOut, acknowledged, returned, timing } = await drainWithWorkers({
    queues: drained,
    region: stack.region,
    registrations,
    timeoutSeconds,
    sqs: viaProxy.sqs,
    onBatch: (event, failed, at) => {
      batches.push(event.Records.map((record) => registrationOf(record.body)));
      for (const record of event.Records) {
        if (!failed.has(record.messageId)) acknowledgedAt.set(registrationOf(record.body), at);
      }
    },
  });
  const depths = async (urls: string[]) =>
    (await Promise.all(urls.map((url) => queueDepth(viaProxy.sqs, url)))).reduce((sum, depth) => sum + depth, 0);
  const dlq = await depths(queues.map((queue) => queue.dlqUrl));
  const leftInQueue = await depths(queues.map((queue) => queue.queueUrl));
  const budgets = new Map([...proxy.budgets()].map(([key, budget]) => [key, { bucket: budget.bucket, calls: budget.proxy.stats() }]));
  const sessions = proxy.accounts.sessionsPerAccount();
  const upstreamLatency = proxy.latency();
  await proxy.stop();

  // What the emulator holds now, read directly: registrations, each shard's keys and plans, emails.
  const direct = clientsAt(endpoint);
  const records = await registrationsOf(direct, config.tableName, customers.map((c) => c.customerId));
  const probe = new ShardProbe({ ...stack, shards: locations }, { stage: config.stage, namePrefix: config.keyNamePrefix });
  const keysByShard = new Map<string, { id: string; customerId: string | undefined }[]>();
  const misplacedByShard = new Map<string, number>();
  for (const shard of locations) {
    const [keys, tiers] = await Promise.all([probe.keys(shard.id), probe.tiersByKey(shard.id)]);
    keysByShard.set(shard.id, keys);
    const recordedHere = [...records.values()].filter((r) => r.shard === shard.id && r.keyId).map((r) => r.keyId!);
    misplacedByShard.set(shard.id, recordedHere.filter((keyId) => tiers.get(keyId)?.length !== 1).length);
  }
  probe.destroy();
  const emails = (await sentEmails(endpoint, (address) => address.endsWith(`@${run}.example.com`))).length;

  const recordedKeys = new Set([...records.values()].filter((r) => r.keyId).map((r) => `${r.shard}/${r.keyId}`));
  const keysOfCustomer = new Map<string, number>();
  let orphans = 0;
  for (const [shardId, keys] of keysByShard) {
    for (const key of keys) {
      keysOfCustomer.set(String(key.customerId), (keysOfCustomer.get(String(key.customerId)) ?? 0) + 1);
      if (!recordedKeys.has(`${shardId}/${key.id}`)) orphans++;
    }
  }
  const duplicates = [...keysOfCustomer.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0);
  const active = [...records.values()].filter((r) => r.state === 'ACTIVE').length;

  const perShard: ScaleOutShard[] = locations.map((shard) => {
    const key = budgetKey(budgetOf(shard, stack));
    const placed = [...records.entries()].filter(([, r]) => r.shard === shard.id);
    const times = placed.map(([id]) => acknowledgedAt.get(id)).filter((at): at is number => at !== undefined);
    return {
      id: shard.id,
      budget: key,
      placed: placed.length,
      active: placed.filter(([, r]) => r.state === 'ACTIVE').length,
      keys: keysByShard.get(shard.id)?.length ?? 0,
      admitted: budgets.get(key)?.bucket.admitted ?? 0,
      throttled: budgets.get(key)?.bucket.refused ?? 0,
      seconds: times.length > 0 ? round((Math.max(...times) - started) / 1000, 2) : null,
    };
  });
  const shardBudgets = new Set(perShard.map((shard) => shard.budget));
  const throttled = [...budgets.values()].reduce((sum, budget) => sum + budget.bucket.refused, 0);
  progress(
    `${active} active in ${round(seconds, 1)} s = ${round(active / seconds, 2)}/s of ${round(limit, 2)}/s the shards allow; ` +
      perShard.map((shard) => `${shard.id} ${shard.active} (${shard.admitted} calls, ${shard.throttled} 429)`).join(', '),
  );

  return {
    shards,
    registrations,
    seconds: round(seconds, 2),
    active,
    workerCallsPerShard: worker.sharePerSecond,
    accountCallsPerShard: ACCOUNT_MANAGEMENT_BUDGET.ratePerSecond,
    throttled,
    duplicates,
    orphans,
    perShard,
    details: {
      share: input.share,
      worker,
      // One provisioning queue per shard, each with worker.containers containers of its own.
      queues: queues.length,
      timedOut,
      timeoutSeconds,
      timing,
      upstreamLatency,
      queueVisibilityTimeout: visibilityTimeout,
      enqueueSeconds: round(enqueueSeconds, 2),
      acknowledged,
      returnedToQueue: returned,
      leftInQueue,
      dlq,
      emails,
      keysInWrongPlanCount: [...misplacedByShard.values()].reduce((sum, count) => sum + count, 0),
      batchMix: batchMix(batches.map((batch) => batch.map((id) => records.get(id)?.shard ?? 'unknown'))),
      assumedRoleSessionsPerAccount: sessions,
      // Budgets that API Gateway calls reached outside the point's shards: none if every call was told apart.
      otherBudgets: [...budgets.keys()].filter((key) => !shardBudgets.has(key)),
      callsByBudget: Object.fromEntries([...budgets].map(([key, budget]) => [key, apiGatewayCalls(budget.calls.calls)])),
      sdkRetriesByBudget: Object.fromEntries([...budgets].map(([key, budget]) => [key, budget.calls.sdkRetries])),
    },
  };
}

interface ShardQueue {
  shard: string;
  queueUrl: string;
  dlqUrl: string;
}

const registrationOf = (body: string) => String((JSON.parse(body) as { registrationId?: unknown }).registrationId);

/** The point's shards as the probe reads them: one shard is the home shard of a stack without a list. */
function shardsOf(stack: LocalStack): LocalShard[] {
  return (
    stack.shards ?? [{ id: 'home', region: stack.region, restApiId: stack.restApiId, baseUrl: '', plans: stack.usagePlans }]
  );
}

/** The account and Region a shard's calls act in: its role's account, else moto's default account. */
function budgetOf(shard: LocalShard, stack: LocalStack): { account: string; region: string } {
  const account = /^arn:[^:]+:iam::(\d{12}):role\//.exec(shard.roleArn ?? '')?.[1] ?? MOTO_DEFAULT_ACCOUNT;
  return { account, region: shard.region ?? stack.region };
}

async function registrationsOf(direct: ReturnType<typeof clientsAt>, tableName: string, registrationIds: string[]) {
  const recorded = new Map<string, { state: string; keyId?: string; shard: string }>();
  for (let start = 0; start < registrationIds.length; start += 100) {
    let pending: Record<string, string>[] | undefined = registrationIds.slice(start, start + 100).map((id) => ({ pk: `REG#${id}`, sk: 'REG' }));
    while (pending?.length) {
      const answer = await direct.dynamo.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending } } }));
      for (const item of answer.Responses?.[tableName] ?? []) {
        recorded.set(String(item.registrationId), {
          state: String(item.state),
          keyId: item.keyId as string | undefined,
          // A registration that names no shard is the home shard's (shared/core/shards.ts, shardOf).
          shard: typeof item.shard === 'string' ? item.shard : 'home',
        });
      }
      pending = answer.UnprocessedKeys?.[tableName]?.Keys as Record<string, string>[] | undefined;
    }
  }
  return recorded;
}

const apiGatewayCalls = (calls: Record<string, number>) =>
  Object.entries(calls)
    .filter(([name]) => name.startsWith('apigateway.'))
    .reduce((sum, [, count]) => sum + count, 0);

await childMain(measurePoint);
