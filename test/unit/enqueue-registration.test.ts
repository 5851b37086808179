import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SqsRegistrationQueue } from '../../shared/aws/sqs-registration-queue';
import { TransientAwsError } from '../../shared/errors';
import { enqueueRegistration } from '../../shared/provisioning/enqueue-registration';
import type { Registration } from '../../shared/core/registration';
import {
  aRequest,
  awsError,
  claimFindsExisting,
  existingRegistration,
  mockedProvisioning,
  type MockedProvisioning,
} from '../support/provisioning-fakes';

const NOW = new Date('2026-03-01T12:00:00.000Z');

describe('enqueueRegistration', () => {
  let m: MockedProvisioning;
  const sqs = new SQSClient({ region: 'us-east-1' });
  const sqsMock = mockClient(sqs);
  const enqueue = () =>
    enqueueRegistration(
      { registrationId: 'reg-1', request: aRequest(), now: NOW },
      { ...m.deps, queue: new SqsRegistrationQueue({ client: sqs, queueUrl: 'https://sqs.test/q' }) },
    );
  const existing = (state: Registration['state']) => claimFindsExisting(m, existingRegistration({ state }));

  beforeEach(() => {
    m = mockedProvisioning();
    sqsMock.reset();
    sqsMock.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
  });

  it('records the registration QUEUED, then sends the request to the queue', async () => {
    const result = await enqueue();

    expect(result).toMatchObject({ outcome: 'queued', registration: { state: 'QUEUED', leaseExpiresAt: 0 } });
    const claim = m.dynamoMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Put?.Item;
    expect(claim).toMatchObject({ state: 'QUEUED' });
    expect(JSON.parse(String(sqsMock.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody))).toEqual({
      registrationId: 'reg-1',
      request: aRequest(),
    });
    expect(m.apiGatewayMock.calls()).toHaveLength(0);
  });

  it('sends an unfinished registration again, since its first message may have been lost', async () => {
    existing('QUEUED');

    expect((await enqueue()).outcome).toBe('requeued');
    expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(1);
  });

  it('replays a finished registration without a message', async () => {
    existing('ACTIVE');

    expect((await enqueue()).outcome).toBe('replayed');
    expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('answers retry-later when the queue is unavailable, keeping the QUEUED record for the retry', async () => {
    sqsMock.on(SendMessageCommand).rejects(awsError('ServiceUnavailable', 503));

    await expect(enqueue()).rejects.toBeInstanceOf(TransientAwsError);
  });
});
