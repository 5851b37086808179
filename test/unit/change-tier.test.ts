import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { changeTier, type TierChangeDeps } from '../../shared/customers/change-tier';
import { NotFoundError, ValidationError } from '../../shared/errors';
import { awsError, mockedProvisioning } from '../support/provisioning-fakes';

function tierChangeDeps() {
  const m = mockedProvisioning();
  const deps: TierChangeDeps = {
    keys: m.deps.keys,
    ledger: m.deps.ledger,
    clock: () => NOW,
    settings: { shards: m.deps.settings.shards, leaseSeconds: 30, sweepSeconds: 300 },
  };
  return { m, deps };
}

const NOW = new Date('2026-04-01T10:00:00.000Z');

describe('changeTier', () => {
  it('refuses an unknown tier before any AWS call', async () => {
    const { m, deps } = tierChangeDeps();

    await expect(changeTier({ customerId: 'cust-1', tier: 'platinum', requestId: 'r', now: NOW }, deps)).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(m.dynamoMock.calls()).toHaveLength(0);
    expect(m.apiGatewayMock.calls()).toHaveLength(0);
  });

  it('answers not found for an unknown customer after one conditional write and no API Gateway call', async () => {
    const { m, deps } = tierChangeDeps();
    // The lease's condition fails and DynamoDB hands back no item: there is no customer.
    m.dynamoMock.on(UpdateCommand).rejects(awsError('ConditionalCheckFailedException'));

    await expect(changeTier({ customerId: 'cust-1', tier: 'pro', requestId: 'r', now: NOW }, deps)).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(m.dynamoMock.calls()).toHaveLength(1);
    expect(m.apiGatewayMock.calls()).toHaveLength(0);
  });
});
