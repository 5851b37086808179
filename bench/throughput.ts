// Figure 4: throughput of the provisioning worker as deployed. Registrations are queued the way
// `Prefer: respond-async` and `npm run import` queue them (enqueueRegistration); the worker's
// containers (its queue trigger's MaximumConcurrency) work the real queue, each built by the
// handler module from the environment serverless.yml gives the function (bench/deployed-functions.ts):
// its share of the management budget (infra/serverless/management-budget.js), paced per container.
// Every call goes through a proxy that enforces API Gateway's budget for the account (10/s, burst
// 40, 429 beyond it). A registration costs 2 management calls: the worker's share allows share / 2
// registrations per second (the target), the account 5 (reported: the static split's cost when
// the worker runs alone).
import { randomUUID } from 'node:crypto';
import { GetApiKeysCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { loadConfig } from '../shared/config';
import { clientsAt } from '../test/support/aws-test-clients';
import { createQueuePair, queueDepth, type SentEmail } from '../test/support/emulator-probe';
import { ACCOUNT_MANAGEMENT_BUDGET, startBudgetProxy } from './budget-proxy';
import { itemsPerSecond, MANAGEMENT_CALLS_PER_REGISTRATION, shareOf, throughputFigures } from './budget-figures';
import { childMain, progress } from './child';
import { matchDeployedQueue, readDeployedFunctions, STACK_ENVIRONMENT } from './deployed-functions';
import { figureStack } from './figure-stack';
import { queueRegistrations } from './queued-registrations';
import { drainWithWorkers, type WorkerHandler } from './worker-drain';
import { type Figure, round } from './stats';

interface ThroughputInput {
  endpoint: string;
  registrations: number;
  /** Default: three times what the worker's share needs, at least two minutes. */
  timeoutSeconds?: number;
}

async function measureThroughput({ endpoint, registrations, ...input }: ThroughputInput): Promise<Figure[]> {
  const run = randomUUID().slice(0, 8);
  const direct = clientsAt(endpoint);
  const { stack, env: figureEnv } = await figureStack(endpoint, 'throughput');
  // The worker as serverless.yml deploys it: its environment (MANAGEMENT_* included) and its cap.
  const { provisionWorker: deployed } = await readDeployedFunctions(['provisionWorker'], {
    skip: new Set([...Object.keys(figureEnv), ...STACK_ENVIRONMENT]),
  });
  if (!deployed) throw new Error('serverless.yml defines no provisionWorker');
  const { proxy, bucket } = await startBudgetProxy(endpoint, ACCOUNT_MANAGEMENT_BUDGET);
  // The SQS client sends to the host in the queue URL, which the emulator takes from the request
  // that created the queue: created through the proxy, the queue is reached through it.
  const viaProxy = clientsAt(proxy.endpoint);
  const { queueUrl, dlqUrl } = await createQueuePair(viaProxy.sqs, `bench-throughput-${run}`);
  // Delivered as the deployed queue delivers (its visibility timeout).
  const visibilityTimeout = await matchDeployedQueue(viaProxy.sqs, queueUrl, deployed.queue);
  // From here on keyplan's clients reach AWS through the proxy only, as the deployed workers share
  // the account's budget; the bench's own checks go to the emulator directly.
  Object.assign(process.env, deployed.environment, { AWS_ENDPOINT_URL: proxy.endpoint, QUEUE_URL: queueUrl });
  const config = loadConfig();
  const worker = shareOf(config, deployed.concurrency);
  const containers = worker.containers;
  const shareLimit = itemsPerSecond(worker.sharePerSecond, MANAGEMENT_CALLS_PER_REGISTRATION);
  const timeoutSeconds = input.timeoutSeconds ?? Math.max(120, Math.ceil((registrations / shareLimit) * 3));
  progress(
    `worker: ${containers} containers, share ${worker.sharePerSecond} calls/s (${round(worker.sharePerSecond / containers, 3)}/s each, ` +
      `burst ${worker.burst}): at most ${round(shareLimit, 3)} registrations/s; timeout ${timeoutSeconds} s`,
  );

  const { customers, enqueueSeconds } = await queueRegistrations(config, { label: 'tp', run, registrations });

  // One handler module per container: each builds its own clients and budget share at init.
  const handlerUrl = new URL('../functions/provision-worker/handler.ts', import.meta.url).href;
  const handlers: WorkerHandler[] = [];
  for (let container = 1; container <= containers; container++) {
    const module = (await import(`${handlerUrl}?container=${container}`)) as { handler: WorkerHandler };
    handlers.push(module.handler);
  }

  const callsBefore = proxy.stats();
  const { seconds, timedOut, acknowledged, returned } = await drainWithWorkers({
    queues: [{ queueUrl, handlers }],
    region: stack.region,
    registrations,
    timeoutSeconds,
    sqs: viaProxy.sqs,
  });
  const calls = proxy.stats();
  const dlq = await queueDepth(viaProxy.sqs, dlqUrl);
  const leftInQueue = await queueDepth(viaProxy.sqs, queueUrl);
  await proxy.stop();

  // What the emulator holds now, read directly: keys, plans, registrations, emails, queues.
  const outcome = await inspect(direct, {
    prefix: config.keyNamePrefix,
    tableName: config.tableName,
    usagePlans: Object.values(stack.usagePlans),
    registrationIds: customers.map((c) => c.customerId),
    emailDomain: `${run}.example.com`,
    endpoint,
  });
  const managementCalls = apiGatewayCalls(calls.calls) - apiGatewayCalls(callsBefore.calls);
  const achieved = outcome.active / seconds;
  progress(
    `${outcome.active} active in ${round(seconds, 1)} s = ${round(achieved, 2)}/s of ${round(shareLimit, 2)}/s the share allows; 429s ${bucket.refused}`,
  );

  return throughputFigures({
    achievedPerSecond: achieved,
    worker,
    accountCallsPerSecond: ACCOUNT_MANAGEMENT_BUDGET.ratePerSecond,
    duplicates: outcome.duplicates,
    orphans: outcome.orphans,
    dlq,
    details: {
      registrations,
      containers,
      seconds: round(seconds, 2),
      timedOut,
      timeoutSeconds,
      queueVisibilityTimeout: visibilityTimeout,
      enqueueSeconds: round(enqueueSeconds, 2),
      active: outcome.active,
      notActive: outcome.notActive,
      acknowledged,
      returnedToQueue: returned,
      leftInQueue,
      emails: outcome.emails,
      keysInWrongPlanCount: outcome.misplaced,
      managementCallsSeen: managementCalls,
      managementCallsAdmitted: bucket.admitted,
      managementCallsAdmittedPerSecond: round(bucket.admitted / seconds, 2),
      throttled429: bucket.refused,
      sdkRetries: calls.sdkRetries - callsBefore.sdkRetries,
      callsByOperation: calls.calls,
    },
  });
}

async function inspect(
  direct: ReturnType<typeof clientsAt>,
  scope: { prefix: string; tableName: string; usagePlans: string[]; registrationIds: string[]; emailDomain: string; endpoint: string },
) {
  const keys: { id: string; customerId: string }[] = [];
  let position: string | undefined;
  do {
    const page = await direct.apiGateway.send(new GetApiKeysCommand({ nameQuery: `${scope.prefix}-`, limit: 500, position }));
    for (const key of page.items ?? []) keys.push({ id: String(key.id), customerId: String(key.customerId) });
    position = page.position;
  } while (position);

  const plansOfKey = new Map<string, number>();
  for (const usagePlanId of scope.usagePlans) {
    let planPosition: string | undefined;
    do {
      const page = await direct.apiGateway.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 500, position: planPosition }));
      for (const key of page.items ?? []) plansOfKey.set(String(key.id), (plansOfKey.get(String(key.id)) ?? 0) + 1);
      planPosition = page.position;
    } while (planPosition);
  }

  const recorded = new Map<string, { state: string; keyId?: string }>();
  for (let start = 0; start < scope.registrationIds.length; start += 100) {
    let pending: Record<string, string>[] | undefined = scope.registrationIds
      .slice(start, start + 100)
      .map((id) => ({ pk: `REG#${id}`, sk: 'REG' }));
    while (pending?.length) {
      const answer = await direct.dynamo.send(new BatchGetCommand({ RequestItems: { [scope.tableName]: { Keys: pending } } }));
      for (const item of answer.Responses?.[scope.tableName] ?? []) {
        recorded.set(String(item.registrationId), { state: String(item.state), keyId: item.keyId as string | undefined });
      }
      pending = answer.UnprocessedKeys?.[scope.tableName]?.Keys as Record<string, string>[] | undefined;
    }
  }

  const keysOfCustomer = new Map<string, number>();
  for (const key of keys) keysOfCustomer.set(key.customerId, (keysOfCustomer.get(key.customerId) ?? 0) + 1);
  const recordedKeyIds = new Set([...recorded.values()].map((r) => r.keyId).filter(Boolean));
  const active = [...recorded.values()].filter((r) => r.state === 'ACTIVE').length;

  const data = (await (await fetch(`${scope.endpoint}/moto-api/data.json`)).json()) as { ses?: { Message?: SentEmail[] } };
  const emails = (data.ses?.Message ?? []).filter((m) =>
    m.destinations.ToAddresses?.some((to) => to.endsWith(`@${scope.emailDomain}`)),
  ).length;

  return {
    active,
    notActive: scope.registrationIds.length - active,
    /** A customer's keys beyond its first. */
    duplicates: [...keysOfCustomer.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0),
    /** Keys no registration records. */
    orphans: keys.filter((key) => !recordedKeyIds.has(key.id)).length,
    /** Recorded keys not in exactly one plan. */
    misplaced: [...recordedKeyIds].filter((id) => plansOfKey.get(String(id)) !== 1).length,
    emails,
  };
}

const apiGatewayCalls = (calls: Record<string, number>) =>
  Object.entries(calls)
    .filter(([name]) => name.startsWith('apigateway.'))
    .reduce((sum, [, count]) => sum + count, 0);

await childMain(measureThroughput);
