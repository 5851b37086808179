import { ApiKeyGateway, type ApiGatewaySender } from '../aws/api-key-gateway';
import { pacedClient, TokenBucket } from '../aws/management-budget';
import type { Config } from '../config';

/**
 * One container's part of this function's share of the account's management budget: share / the
 * function's concurrency cap, with the function's burst (infra/serverless/management-budget.js
 * splits the budget; the config carries this function's row).
 */
export function managementBudget(config: Config): TokenBucket {
  return new TokenBucket(config.managementSharePerSecond / config.managementConcurrency, config.managementBurst);
}

/**
 * The key gateway over paced views of the API Gateway clients, both drawing on one bucket. The
 * clients themselves are not changed. Without the single-attempt client the gateway cannot create
 * keys: only for deps whose type leaves `ensureKey` out (tier change, revocation, usage, reconcile).
 */
export function pacedKeyGateway(
  config: Config,
  clients: { apiGateway: ApiGatewaySender; apiGatewaySingleAttempt?: ApiGatewaySender | undefined },
): ApiKeyGateway {
  const bucket = managementBudget(config);
  return new ApiKeyGateway({
    client: pacedClient(clients.apiGateway, bucket),
    singleAttemptClient: clients.apiGatewaySingleAttempt && pacedClient(clients.apiGatewaySingleAttempt, bucket),
  });
}
