import { APIGatewayClient, CreateApiKeyCommand, DeleteUsagePlanKeyCommand, GetUsagePlanCommand } from '@aws-sdk/client-api-gateway';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { ApiKeyGateway } from '../../shared/aws/api-key-gateway';

const spec = { name: 'keyplan-test-key', customerId: 'cust-1', description: 'test', tags: {} };

// The functions whose use cases never create a key (tier change, revocation, usage, reconcile)
// build their gateway without the single-attempt client (shared/wiring/).
describe('ApiKeyGateway without a single-attempt client', () => {
  it('refuses to create a key, without a call, rather than creating it through the retrying client', async () => {
    const client = new APIGatewayClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    const gateway = new ApiKeyGateway({ client });

    await expect(gateway.ensureKey(spec, { lookupFirst: true })).rejects.toThrow(/no single-attempt client/);
    expect(mock.commandCalls(CreateApiKeyCommand)).toHaveLength(0);
    expect(mock.calls()).toHaveLength(0);
  });

  it('makes every other call through its client', async () => {
    const client = new APIGatewayClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    mock.on(DeleteUsagePlanKeyCommand).resolves({});
    const gateway = new ApiKeyGateway({ client });

    await gateway.removeKeyFromPlan('plan-free', 'key-1');

    expect(mock.commandCalls(DeleteUsagePlanKeyCommand)[0]?.args[0].input).toEqual({ usagePlanId: 'plan-free', keyId: 'key-1' });
  });
});

describe('ApiKeyGateway plan limits', () => {
  it('reads a plan once for concurrent first lookups, and again after a failed read', async () => {
    const client = new APIGatewayClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    mock
      .on(GetUsagePlanCommand)
      .rejectsOnce(Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }))
      .resolves({ throttle: { rateLimit: 5, burstLimit: 10 }, quota: { limit: 1000, period: 'MONTH' } });
    const gateway = new ApiKeyGateway({ client });

    await expect(gateway.getPlanLimits('plan-pro')).rejects.toThrow('denied');
    const limits = await Promise.all([1, 2, 3, 4].map(() => gateway.getPlanLimits('plan-pro')));

    expect(mock.commandCalls(GetUsagePlanCommand)).toHaveLength(2);
    expect(limits).toEqual(Array(4).fill({ rateLimit: 5, burstLimit: 10, quotaLimit: 1000, quotaPeriod: 'MONTH' }));
  });
});
