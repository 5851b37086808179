import {
  APIGatewayClient,
  GetApiKeyCommand,
  GetApiKeysCommand,
  GetUsagePlanKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { LocalShard, LocalStack } from '../../infra/local/bootstrap';
import type { SentEmail } from './emulator-probe';

/** A key as one shard's API Gateway holds it; the value only when asked for (never log it). */
export interface ShardKey {
  id: string;
  name: string;
  enabled: boolean;
  customerId: string | undefined;
  tags: Record<string, string>;
  value?: string | undefined;
}

/** Which keys of a test's own a probe looks at: its stage's tag and its name prefix. */
export interface OwnKeys {
  stage: string;
  namePrefix: string;
}

/** Per shard, per key id: enabled, and the tiers whose plans hold it there. */
export type ShardSnapshot = Record<string, Record<string, { enabled: boolean; tiers: string[] }>>;

/**
 * Reads back what each shard of a local multi-shard stack holds, with clients of the test's own
 * bound to the emulator (whatever AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_STS say): the shard's
 * Region and, for another account, the role's credentials from the emulator's STS.
 */
export class ShardProbe {
  readonly #stack: LocalStack;
  readonly #own: OwnKeys;
  readonly #clients = new Map<string, APIGatewayClient>();

  constructor(stack: LocalStack, own: OwnKeys) {
    this.#stack = stack;
    this.#own = own;
  }

  get shards(): LocalShard[] {
    if (!this.#stack.shards) throw new Error('the stack has no shard list: bootstrap it with shards > 1');
    return this.#stack.shards;
  }

  shard(shardId: string): LocalShard {
    const shard = this.shards.find((candidate) => candidate.id === shardId);
    if (!shard) throw new Error(`no shard ${shardId} in the stack`);
    return shard;
  }

  /** API Gateway of the shard, as the test sees it. */
  client(shardId: string): APIGatewayClient {
    let client = this.#clients.get(shardId);
    if (!client) {
      const shard = this.shard(shardId);
      const base = {
        endpoint: this.#stack.endpoint,
        region: shard.region,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      };
      client = new APIGatewayClient({
        ...base,
        ...(shard.roleArn
          ? {
              credentials: fromTemporaryCredentials({
                params: { RoleArn: shard.roleArn, ExternalId: shard.externalId, RoleSessionName: 'keyplan-test-probe' },
                clientConfig: base,
              }),
            }
          : {}),
      });
      this.#clients.set(shardId, client);
    }
    return client;
  }

  /** The test's own keys in the shard (its stage's tag, its name prefix), values only on request. */
  async keys(shardId: string, options: { values?: boolean } = {}): Promise<ShardKey[]> {
    const keys: ShardKey[] = [];
    let position: string | undefined;
    do {
      const page = await this.client(shardId).send(
        new GetApiKeysCommand({ nameQuery: `${this.#own.namePrefix}-`, includeValues: options.values === true, limit: 500, position }),
      );
      for (const key of page.items ?? []) {
        const tags = key.tags ?? {};
        if (tags['keyplan:stage'] !== this.#own.stage || !key.name?.startsWith(`${this.#own.namePrefix}-`)) continue;
        keys.push({
          id: String(key.id),
          name: key.name,
          enabled: key.enabled === true,
          customerId: key.customerId,
          tags,
          ...(options.values ? { value: key.value } : {}),
        });
      }
      position = page.position;
    } while (position);
    return keys;
  }

  /** One key of the shard, or undefined when the shard has no such key. */
  async key(shardId: string, keyId: string): Promise<{ enabled: boolean } | undefined> {
    try {
      const key = await this.client(shardId).send(new GetApiKeyCommand({ apiKey: keyId, includeValue: false }));
      return { enabled: key.enabled === true };
    } catch (error) {
      if ((error as { name?: string }).name === 'NotFoundException') return undefined;
      throw error;
    }
  }

  /** Key id -> the tiers whose plans hold it in the shard (any key, not only the test's own). */
  async tiersByKey(shardId: string): Promise<Map<string, string[]>> {
    const tiers = new Map<string, string[]>();
    for (const [tier, usagePlanId] of Object.entries(this.shard(shardId).plans)) {
      let position: string | undefined;
      do {
        const page = await this.client(shardId).send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 1000, position }));
        for (const item of page.items ?? []) tiers.set(String(item.id), [...(tiers.get(String(item.id)) ?? []), tier]);
        position = page.position;
      } while (position);
    }
    return tiers;
  }

  /** Every shard's own keys: enabled, and in which tiers' plans there. */
  async snapshot(): Promise<ShardSnapshot> {
    const snapshot: ShardSnapshot = {};
    for (const shard of this.shards) {
      const [keys, tiers] = await Promise.all([this.keys(shard.id), this.tiersByKey(shard.id)]);
      snapshot[shard.id] = Object.fromEntries(
        keys.map((key) => [key.id, { enabled: key.enabled, tiers: (tiers.get(key.id) ?? []).sort() }]),
      );
    }
    return snapshot;
  }

  destroy(): void {
    for (const client of this.#clients.values()) client.destroy();
    this.#clients.clear();
  }
}

/** The shards whose own keys differ between two snapshots. */
export function changedShards(before: ShardSnapshot, after: ShardSnapshot): string[] {
  const ids = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return ids.filter((id) => JSON.stringify(sorted(before[id] ?? {})) !== JSON.stringify(sorted(after[id] ?? {}))).sort();
}

const sorted = (keys: Record<string, unknown>) => Object.fromEntries(Object.entries(keys).sort(([a], [b]) => a.localeCompare(b)));

/** Every SES message moto kept whose recipient `matches`, oldest first: one read for many customers. */
export async function sentEmails(endpoint: string, matches: (address: string) => boolean): Promise<SentEmail[]> {
  const response = await fetch(`${endpoint}/moto-api/data.json`);
  const data = (await response.json()) as { ses?: { Message?: SentEmail[] } };
  return (data.ses?.Message ?? []).filter((message) => message.destinations.ToAddresses?.some(matches));
}

/**
 * The base URL a key email tells the customer to call ("Call the API at …"), or undefined. Only
 * that line is read, so a failing assertion shows a URL, never the key value in the same body.
 */
export function calledAt(email: SentEmail | undefined): string | undefined {
  return email ? /Call the API at (?:<code>)?(https:\/\/[^\s<]+)/.exec(email.body)?.[1] : undefined;
}
