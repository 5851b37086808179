import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { CustomerTable } from '../../shared/aws/customer-table';
import { KeyTable } from '../../shared/aws/key-table';
import { changeTier, type TierChangeDeps } from '../../shared/customers/change-tier';
import { NotFoundError, ValidationError } from '../../shared/errors';
import { mockedProvisioning } from '../support/provisioning-fakes';

function tierChangeDeps() {
  const m = mockedProvisioning();
  const customers = new CustomerTable({ client: m.dynamo, tableName: 'keyplan-test' });
  const deps: TierChangeDeps = {
    keys: m.deps.keys,
    store: m.deps.store,
    keyStore: new KeyTable({ client: m.dynamo, tableName: 'keyplan-test' }),
    customers,
    lock: customers,
    settings: { tierMap: m.deps.settings.tierMap, leaseSeconds: 30 },
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

  it('answers not found for an unknown customer after one read and no API Gateway call', async () => {
    const { m, deps } = tierChangeDeps();
    m.dynamoMock.on(QueryCommand).resolves({ Items: [] });

    await expect(changeTier({ customerId: 'cust-1', tier: 'pro', requestId: 'r', now: NOW }, deps)).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(m.dynamoMock.calls()).toHaveLength(1);
    expect(m.apiGatewayMock.calls()).toHaveLength(0);
  });
});
