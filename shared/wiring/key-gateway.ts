import type { ApiGatewayCalls, ApiKeyGatewayOptions, ApiGatewaySender } from '../aws/api-key-gateway';
import { apiGatewayClient, type ShardLocation, singleAttemptApiGatewayClient } from '../aws/clients';
import { pacedClient, TokenBucket } from '../aws/management-budget';
import type { CoreConfig } from '../config';
import { newKeyValue } from '../core/key-value';
import { type ShardKeys, shardOf } from '../core/shards';

/**
 * One container's part of this function's share of a shard's management budget: share / the
 * function's concurrency cap, with the function's burst (infra/serverless/management-budget.js
 * splits the budget; the config carries this function's row). Every shard is an account and
 * Region of its own, with its own 10 requests/s: each gets a bucket of this size.
 */
export function managementBudget(config: CoreConfig): TokenBucket {
  return new TokenBucket(config.managementSharePerSecond / config.managementConcurrency, config.managementBurst);
}

interface GatewayClients {
  apiGateway: ApiGatewaySender;
  /** Without it the gateways cannot create keys: for deps that never do (tier change, usage, ...). */
  apiGatewaySingleAttempt?: ApiGatewaySender | undefined;
}

/**
 * The key gateway of each shard, over paced views of its API Gateway clients, both drawing on the
 * shard's own bucket; the clients themselves are not changed. The home shard (no Region or role
 * of its own) uses the clients the composition built; any other shard's clients are built the
 * first time a key there is touched, so a function pays for a shard only once it works in it.
 * Keys made through them get keyplan's own values, prefixed with the shard's id. `Gateway` is the
 * class of what the function calls (aws/api-key-gateway.ts), so that it bundles no other call.
 */
export function shardKeyGateways<G extends ApiGatewayCalls>(
  config: CoreConfig,
  clients: GatewayClients,
  Gateway: new (options: ApiKeyGatewayOptions) => G,
): ShardKeys<G> {
  const gateways = new Map<string, G>();
  const build = (location: ShardLocation): G => {
    const own = location.region === undefined && location.roleArn === undefined;
    const single = clients.apiGatewaySingleAttempt && (own ? clients.apiGatewaySingleAttempt : singleAttemptApiGatewayClient(location));
    const bucket = managementBudget(config);
    return new Gateway({
      client: pacedClient(own ? clients.apiGateway : apiGatewayClient(location), bucket),
      singleAttemptClient: single && pacedClient(single, bucket),
      newKeyValue: () => newKeyValue(location.id),
    });
  };
  return {
    in(shardId) {
      const shard = shardOf(config.shards, shardId);
      let gateway = gateways.get(shard.id);
      if (!gateway) {
        gateway = build(shard);
        gateways.set(shard.id, gateway);
      }
      return gateway;
    },
  };
}
