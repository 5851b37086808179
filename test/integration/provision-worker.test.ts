import { singleShard } from '../../shared/core/shards';
import type { SQSBatchResponse } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { startQueuePoller } from '../../infra/local/queue-poller';
import { createAwsClients } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { createProvisioningDeps, createWorkerDeps } from '../../shared/wiring/compose';
import { enqueueRegistration } from '../../shared/provisioning/enqueue-registration';
import type { ProvisioningMessage } from '../../shared/provisioning/ports';
import { hashRegistrationRequest, keyNameFor } from '../../shared/core/registration';
import { SqsRegistrationQueue } from '../../shared/aws/sqs-registration-queue';
import { provisioningBatchHandler } from '../../functions/provision-worker/batch';
import { lambdaContext } from '../support/api-events';
import {
  createQueuePair,
  eventually,
  failWhile,
  keysNamed,
  plansOfKey,
  queueDepth,
  sentEmailsTo,
} from '../support/emulator-probe';
import { sqsEvent, sqsRecord } from '../support/sqs-events';

const stack = inject('localStack');
let config: Config;
let runId = 0;
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${++runId}`;

const message = (customerId: string, tier = 'free'): ProvisioningMessage => ({
  registrationId: customerId,
  request: { customerId, email: `${customerId}@example.com`, tier },
});

/** Records a registration QUEUED the way the HTTP and import paths do, keeping the message. */
async function queued(msg: ProvisioningMessage, tierMap = config.tierMap): Promise<ProvisioningMessage> {
  const sent: ProvisioningMessage[] = [];
  const deps = createProvisioningDeps(config);
  await enqueueRegistration(
    { ...msg, now: new Date() },
    { ...deps, settings: { ...deps.settings, shards: singleShard(tierMap) }, queue: { send: async (m) => void sent.push(m) } },
  );
  return msg;
}

const worker = () => provisioningBatchHandler(createWorkerDeps(config));
const registration = (id: string) => createProvisioningDeps(config).store.getRegistration(id);

beforeAll(() => {
  // The workers' pacing is tested in unit tests; here it must not slow the emulator runs down.
  Object.assign(process.env, functionEnvironment(stack), { MANAGEMENT_CALLS_PER_SECOND: '500' });
  config = loadConfig();
});

describe('the provisioning worker', () => {
  it('acknowledges and records 2 malformed messages in a batch of 10, provisioning the 8 others', async () => {
    const good = await Promise.all(Array.from({ length: 8 }, () => queued(message(unique('batch')))));
    const malformed = await queued(message(unique('malformed')));
    const legacy = await queued(message(unique('legacy'), 'legacy'), { ...config.tierMap, legacy: 'retired-plan' });
    const records = [
      ...good.map((m) => sqsRecord(m)),
      sqsRecord(`{"registrationId":"${malformed.registrationId}","request":{"customerId":42}}`),
      sqsRecord(legacy),
    ];

    const response = (await worker()(sqsEvent(records), lambdaContext())) as SQSBatchResponse;

    expect(response.batchItemFailures).toEqual([]);
    expect(await registration(malformed.registrationId)).toMatchObject({ state: 'FAILED', failureReason: 'invalid-message' });
    expect(await registration(legacy.registrationId)).toMatchObject({ state: 'FAILED', failureReason: 'unknown-tier' });
    const aws = createAwsClients();
    for (const m of good) {
      expect(await registration(m.registrationId)).toMatchObject({ state: 'ACTIVE' });
      const keys = await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, m.registrationId));
      expect(keys).toHaveLength(1);
      expect(await plansOfKey(aws.apiGateway, String(keys[0]?.id))).toEqual([stack.usagePlans.free]);
    }
  });

  it('returns exactly the 2 retryable failures of a batch of 10 to the queue', async () => {
    const good = await Promise.all(Array.from({ length: 8 }, () => queued(message(unique('batch')))));
    // Two registrations another attempt is working on: their lease makes the worker retry later.
    const busy = [message(unique('busy')), message(unique('busy'))];
    const deps = createProvisioningDeps(config);
    for (const m of busy) {
      await deps.store.claim(
        {
          ...m.request,
          registrationId: m.registrationId,
          payloadHash: hashRegistrationRequest(m.request),
          usagePlanId: stack.usagePlans.free ?? '',
          state: 'PENDING',
          attemptId: 'another-attempt',
          leaseExpiresAt: Date.now() + 60_000,
          createdAt: new Date().toISOString(),
          updatedAt: new Date().toISOString(),
        },
        new Date(),
      );
    }
    const busyRecords = busy.map((m) => sqsRecord(m));
    const records = [...good.slice(0, 4).map((m) => sqsRecord(m)), ...busyRecords, ...good.slice(4).map((m) => sqsRecord(m))];

    const response = (await worker()(sqsEvent(records), lambdaContext())) as SQSBatchResponse;

    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      busyRecords.map((r) => r.messageId).sort(),
    );
    for (const m of good) expect(await registration(m.registrationId)).toMatchObject({ state: 'ACTIVE' });
  });

  it('makes one key of a message delivered twice in a batch and concurrently in two batches', async () => {
    const m = await queued(message(unique('twice')));
    const handle = worker();

    const responses = (await Promise.all([
      handle(sqsEvent([sqsRecord(m), sqsRecord(m)]), lambdaContext()),
      handle(sqsEvent([sqsRecord(m)]), lambdaContext()),
    ])) as SQSBatchResponse[];

    // Losers of the race are returned to the queue and replay on redelivery.
    const failed = responses.flatMap((r) => r.batchItemFailures);
    expect(failed.length).toBeLessThanOrEqual(2);
    const redelivered = (await handle(sqsEvent([sqsRecord(m)]), lambdaContext())) as SQSBatchResponse;
    expect(redelivered.batchItemFailures).toEqual([]);
    const aws = createAwsClients();
    expect(await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, m.registrationId))).toHaveLength(1);
    expect(await sentEmailsTo(stack.endpoint, m.request.email)).toHaveLength(1);
  });

  it('loses and duplicates nothing while API Gateway throttles for a stretch', async () => {
    const sqs = createAwsClients().sqs;
    const { queueUrl, dlqUrl } = await createQueuePair(sqs, unique('throttle-q'));
    const messages = Array.from({ length: 12 }, () => message(unique('stretch')));
    const queue = new SqsRegistrationQueue({ client: sqs, queueUrl });
    for (const m of messages) await enqueueRegistration({ ...m, now: new Date() }, { ...createProvisioningDeps(config), queue });

    const clients = createAwsClients();
    const stretchEnds = Date.now() + 4_000;
    const throttled = () =>
      Object.assign(new Error('Too Many Requests'), { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } });
    const faults = [clients.apiGateway, clients.apiGatewaySingleAttempt].map((client) =>
      failWhile(client, () => Date.now() < stretchEnds, throttled),
    );
    const poller = startQueuePoller({
      sqs,
      queueUrl,
      handler: provisioningBatchHandler(createWorkerDeps(config, clients)),
      retryDelaySeconds: 1,
    });
    try {
      await eventually(async () => {
        const states = await Promise.all(messages.map((m) => registration(m.registrationId)));
        return states.every((r) => r?.state === 'ACTIVE');
      }, 180_000);
    } finally {
      await poller.stop();
    }

    expect(faults.reduce((sum, f) => sum + f.failed, 0)).toBeGreaterThan(0);
    const aws = createAwsClients();
    for (const m of messages) {
      expect(await keysNamed(aws.apiGateway, keyNameFor(config.keyNamePrefix, m.registrationId))).toHaveLength(1);
      expect(await sentEmailsTo(stack.endpoint, m.request.email)).toHaveLength(1);
    }
    expect(await queueDepth(sqs, dlqUrl)).toBe(0);
    expect(await queueDepth(sqs, queueUrl)).toBe(0);
  }, 240_000);
});
