import {
  type APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeyCommand,
  GetApiKeysCommand,
  GetUsageCommand,
  GetUsagePlanCommand,
  GetUsagePlanKeyCommand,
  UpdateApiKeyCommand,
} from '@aws-sdk/client-api-gateway';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiKeySecret } from '../api-key-secret';
import { AssociationRejectedError, TransientAwsError, UsageUnavailableError } from '../errors';
import type { IssuedKey, KeyGateway, NewKeySpec, PlanLimits } from '../core/ports';
import { awsErrorName, isThrottling, isTransient } from './aws-errors';

/** What the gateway needs of an API Gateway client: a client, or a paced view of one (pacedClient). */
export type ApiGatewaySender = Pick<APIGatewayClient, 'send'>;

export interface ApiKeyGatewayOptions {
  /** The client for idempotent calls; the SDK retries them itself. */
  client: ApiGatewaySender;
  /** The Retry-After a TransientAwsError of this gateway's calls suggests. */
  retryAfterSeconds?: number;
  /**
   * A client with `maxAttempts: 1` for CreateApiKey, which is not idempotent: the SDK would repeat
   * a create whose first try may have succeeded (a 5xx or a dropped connection), leaving a second
   * key. This adapter repeats it only after a lookup by name. Without it the gateway cannot create
   * keys (`ensureKey` throws): for the functions whose use cases never do.
   */
  singleAttemptClient?: ApiGatewaySender | undefined;
  createAttempts?: number;
  backoffBaseMs?: number;
  planCacheTtlMs?: number;
  now?: () => number;
  /**
   * Makes the value of each new key (keyplan's own, `kp_<shard>_<random>`: core/key-value.ts).
   * Without it API Gateway generates the value.
   */
  newKeyValue?: (() => string) | undefined;
}

/**
 * What every gateway of this file shares: its client, and AWS's transient failures answered as
 * TransientAwsError. The gateways are apart by what their functions call, so that a function's
 * bundle holds less than all of them: SagaKeyGateway (register and the worker), ApiKeyGateway (the
 * functions that also take keys out of plans or turn them off), KeyUsageGateway (usage).
 */
export class ApiGatewayCalls {
  protected readonly client: ApiGatewaySender;
  readonly #retryAfterSeconds: number;

  constructor(options: ApiKeyGatewayOptions) {
    this.client = options.client;
    this.#retryAfterSeconds = options.retryAfterSeconds ?? 5;
  }

  protected async call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw this.translate(error, operation);
    }
  }

  /**
   * Sends a call about a key or its association, and says whether it was there: API Gateway's
   * NotFoundException is `false` (for a delete or a disable, the work was done already), any
   * other failure is translated.
   */
  protected async found(operation: string, send: () => Promise<unknown>): Promise<boolean> {
    try {
      await send();
      return true;
    } catch (error) {
      if (awsErrorName(error) === 'NotFoundException') return false;
      throw this.translate(error, operation);
    }
  }

  protected translate(error: unknown, operation: string): unknown {
    if (isTransient(error)) {
      return new TransientAwsError(`${operation} failed: ${awsErrorName(error)}`, this.#retryAfterSeconds, {
        cause: error,
        notApplied: isThrottling(error),
      });
    }
    return error;
  }
}

/** Keys made, read, put into plans and rolled back: the registration saga's gateway. */
export class SagaKeyGateway
  extends ApiGatewayCalls
  implements Pick<KeyGateway, 'ensureKey' | 'getKeyValue' | 'addKeyToPlan' | 'deleteKey' | 'getPlanLimits'>
{
  readonly #singleAttemptClient: ApiGatewaySender | undefined;
  readonly #createAttempts: number;
  readonly #backoffBaseMs: number;
  readonly #planCacheTtlMs: number;
  readonly #now: () => number;
  readonly #newKeyValue: (() => string) | undefined;
  /** Plan limits change rarely and are only quoted in emails; one read per container is plenty. */
  readonly #planCache = new Map<string, { limits: Promise<PlanLimits>; expiresAt: number }>();

  constructor(options: ApiKeyGatewayOptions) {
    super(options);
    this.#singleAttemptClient = options.singleAttemptClient;
    this.#createAttempts = options.createAttempts ?? 4;
    this.#backoffBaseMs = options.backoffBaseMs ?? 200;
    this.#planCacheTtlMs = options.planCacheTtlMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
    this.#newKeyValue = options.newKeyValue;
  }

  async addKeyToPlan(usagePlanId: string, keyId: string): Promise<void> {
    try {
      await this.client.send(new CreateUsagePlanKeyCommand({ usagePlanId, keyId, keyType: 'API_KEY' }));
    } catch (error) {
      const name = awsErrorName(error);
      if (name === 'ConflictException') {
        // Either a repeat of our own association (success) or the key sits in another plan of the
        // same stage, which API Gateway forbids: only a look tells which.
        if (await this.#isInPlan(usagePlanId, keyId)) return;
        throw new AssociationRejectedError('the key is already in another usage plan of the same stage', {
          cause: error,
        });
      }
      if (name === 'NotFoundException' || name === 'BadRequestException') {
        throw new AssociationRejectedError(`API Gateway rejected the association (${name})`, { cause: error });
      }
      throw this.translate(error, 'CreateUsagePlanKey');
    }
  }

  async deleteKey(keyId: string): Promise<void> {
    await this.found('DeleteApiKey', () => this.client.send(new DeleteApiKeyCommand({ apiKey: keyId })));
  }

  async ensureKey(spec: NewKeySpec, options: { lookupFirst: boolean }): Promise<IssuedKey> {
    const singleAttemptClient = this.#singleAttemptClient;
    // Never the retrying client instead: a repeated create may leave a second key.
    if (!singleAttemptClient) throw new Error('this key gateway has no single-attempt client: it cannot create keys');
    if (options.lookupFirst) {
      const existing = await this.#findOwnKey(spec);
      if (existing) return existing;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const created = await singleAttemptClient.send(
          new CreateApiKeyCommand({
            name: spec.name,
            description: spec.description,
            // CreateApiKey defaults to a disabled key.
            enabled: true,
            // A fresh value per attempt: a create that failed made nothing to collide with.
            value: this.#newKeyValue?.(),
            customerId: spec.customerId,
            tags: spec.tags,
          }),
        );
        return { id: required(created.id, 'id'), secret: new ApiKeySecret(required(created.value, 'value')) };
      } catch (error) {
        if (!isTransient(error) || attempt >= this.#createAttempts) throw this.translate(error, 'CreateApiKey');
        // A throttled create did not happen; anything else may have, so look before repeating it.
        if (!isThrottling(error)) {
          const existing = await this.#findOwnKey(spec);
          if (existing) return existing;
        }
        await sleep(this.#backoffBaseMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
      }
    }
  }

  async getKeyValue(keyId: string): Promise<ApiKeySecret> {
    const key = await this.call('GetApiKey', () =>
      this.client.send(new GetApiKeyCommand({ apiKey: keyId, includeValue: true })),
    );
    return new ApiKeySecret(required(key.value, 'value'));
  }

  async getPlanLimits(usagePlanId: string): Promise<PlanLimits> {
    const cached = this.#planCache.get(usagePlanId);
    if (cached && cached.expiresAt > this.#now()) return cached.limits;
    // Concurrent misses (a batch worked in parallel) share one GetUsagePlan; a failed read is not kept.
    const limits = this.#fetchPlanLimits(usagePlanId);
    this.#planCache.set(usagePlanId, { limits, expiresAt: this.#now() + this.#planCacheTtlMs });
    limits.catch(() => {
      if (this.#planCache.get(usagePlanId)?.limits === limits) this.#planCache.delete(usagePlanId);
    });
    return limits;
  }

  async #fetchPlanLimits(usagePlanId: string): Promise<PlanLimits> {
    const plan = await this.call('GetUsagePlan', () => this.client.send(new GetUsagePlanCommand({ usagePlanId })));
    return {
      rateLimit: plan.throttle?.rateLimit,
      burstLimit: plan.throttle?.burstLimit,
      quotaLimit: plan.quota?.limit,
      quotaPeriod: plan.quota?.period,
    };
  }

  /**
   * The key `spec` describes, made by an earlier attempt: the exact name (nameQuery is a
   * case-sensitive prefix match) and the same stage. Another stage may use the same prefix, and
   * its key of the same name is never ours to adopt, email or record; a key from before the stage
   * tag existed has none and is taken as ours, as the reconciler takes it.
   */
  async #findOwnKey(spec: NewKeySpec): Promise<IssuedKey | undefined> {
    const stage = spec.tags['keyplan:stage'];
    let position: string | undefined;
    do {
      const page = await this.call('GetApiKeys', () =>
        this.client.send(new GetApiKeysCommand({ nameQuery: spec.name, includeValues: true, limit: 500, position })),
      );
      const match = page.items?.find((key) => {
        const keyStage = key.tags?.['keyplan:stage'];
        return key.name === spec.name && (keyStage === undefined || keyStage === stage);
      });
      if (match) {
        return { id: required(match.id, 'id'), secret: new ApiKeySecret(required(match.value, 'value')), found: true };
      }
      position = page.position;
    } while (position);
    return undefined;
  }

  #isInPlan(usagePlanId: string, keyId: string): Promise<boolean> {
    return this.found('GetUsagePlanKey', () => this.client.send(new GetUsagePlanKeyCommand({ usagePlanId, keyId })));
  }
}

/**
 * The saga's gateway, and keys taken out of plans and turned off: rotation's, the sweep's, tier
 * changes', revocations' and the reconciler's.
 */
export class ApiKeyGateway extends SagaKeyGateway implements Omit<KeyGateway, 'getUsage'> {
  async removeKeyFromPlan(usagePlanId: string, keyId: string): Promise<void> {
    await this.found('DeleteUsagePlanKey', () => this.client.send(new DeleteUsagePlanKeyCommand({ usagePlanId, keyId })));
  }

  async disableKey(keyId: string): Promise<void> {
    const patchOperations = [{ op: 'replace' as const, path: '/enabled', value: 'false' }];
    await this.found('UpdateApiKey', () => this.client.send(new UpdateApiKeyCommand({ apiKey: keyId, patchOperations })));
  }
}

/** A key's daily usage in its plan (GetUsage): the usage route's and the console's gateway. */
export class KeyUsageGateway extends ApiGatewayCalls implements Pick<KeyGateway, 'getUsage'> {
  async getUsage(usagePlanId: string, keyId: string, startDate: string, endDate: string): Promise<[number, number][]> {
    const days: [number, number][] = [];
    let position: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new GetUsageCommand({ usagePlanId, keyId, startDate, endDate, limit: 500, position }),
        );
        // Other keys cannot appear (keyId filters), but only this key's series is ours to read.
        for (const [used, remaining] of page.items?.[keyId] ?? []) days.push([used ?? 0, remaining ?? 0]);
        position = page.position;
      } while (position);
    } catch (error) {
      if (isUnservedRoute(error)) {
        throw new UsageUnavailableError('the AWS endpoint does not serve GetUsage', { cause: error });
      }
      throw this.translate(error, 'GetUsage');
    }
    return days;
  }
}

/**
 * A 404 that is no AWS error: the endpoint has no such route. moto (5.2.5) has none for GetUsage;
 * its web server answers a 404 HTML page, which the SDK fails to parse, so the SDK throws the JSON
 * parser's SyntaxError with `$metadata.httpStatusCode` 404 and no `$fault`. API Gateway's own
 * NotFoundException (e.g. an unknown usage plan, from AWS or moto) is a modelled error: JSON body,
 * `x-amzn-errortype` header, `$fault: 'client'`; it is not this.
 */
function isUnservedRoute(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { $fault?: unknown; $metadata?: { httpStatusCode?: number }; $response?: { headers?: object } };
  if (e.$metadata?.httpStatusCode !== 404 || e.$fault !== undefined) return false;
  return !Object.keys(e.$response?.headers ?? {}).some((name) => name.toLowerCase() === 'x-amzn-errortype');
}

export function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new Error(`API Gateway answered without ${field}`);
  return value;
}
