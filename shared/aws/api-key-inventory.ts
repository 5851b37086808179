import { GetApiKeyCommand, GetApiKeysCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import type { KeyInventory, ListedKey } from '../reconcile/ports';
import { ApiKeyGateway, required } from './api-key-gateway';

/**
 * The key gateway with the reconciler's listings: every key of the account and Region, the keys
 * of a plan, whether a key exists. Apart so that only the reconciler bundles them.
 */
export class ApiKeyInventory extends ApiKeyGateway implements KeyInventory {
  async *listKeyPages(): AsyncIterable<ListedKey[]> {
    let position: string | undefined;
    do {
      const page = await this.call('GetApiKeys', () =>
        this.client.send(new GetApiKeysCommand({ limit: 500, position, includeValues: false })),
      );
      yield (page.items ?? []).map((key) => ({
        id: required(key.id, 'id'),
        name: key.name ?? '',
        createdAt: key.createdDate ?? new Date(0),
        tags: key.tags ?? {},
      }));
      position = page.position;
    } while (position);
  }

  async keysInPlan(usagePlanId: string): Promise<string[]> {
    const ids: string[] = [];
    let position: string | undefined;
    do {
      const page = await this.call('GetUsagePlanKeys', () =>
        this.client.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 500, position })),
      );
      for (const key of page.items ?? []) ids.push(required(key.id, 'id'));
      position = page.position;
    } while (position);
    return ids;
  }

  async keyExists(keyId: string): Promise<boolean> {
    return this.found('GetApiKey', () => this.client.send(new GetApiKeyCommand({ apiKey: keyId, includeValue: false })));
  }
}
