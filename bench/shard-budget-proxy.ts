import { Agent, createServer, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ACCOUNT_MANAGEMENT_BUDGET, type BudgetProxy, startBudgetProxy } from './budget-proxy';

/*
 * API Gateway's management budget is per account and Region (DESIGN §6, §8): each shard has its
 * own 10 requests/s. The bench needs one endpoint that keeps a budget per (account, Region), not
 * one proxy per shard: the SDK's endpoint settings are per service (AWS_ENDPOINT_URL, or
 * AWS_ENDPOINT_URL_API_GATEWAY for every API Gateway client whatever its Region or credentials),
 * so keyplan's clients for different shards cannot be sent to different proxies by configuration,
 * only told apart by what they sign. A SigV4 Authorization header names the access key and, in its
 * credential scope, the Region; the account is the access key's owner. moto, like AWS, acts in the
 * account that owns the key: an assumed role's session keys act in the role's account, any other
 * key in its default account (moto/iam/models.py, get_account_id_from). The proxy learns each
 * session key's account from the STS AssumeRole answers it passes on (the AssumedRoleUser's ARN
 * names the account), so every container's session for a shard, renewed or not, draws on that
 * shard's one budget.
 *
 * Each (account, Region) that calls reach gets its own budget proxy (bench/budget-proxy.ts, the
 * account budget of figures 4 and 6), started on its first call: refusals are answered 429
 * TooManyRequestsException in API Gateway's wire shape, and each budget counts its own calls.
 * Every other request (DynamoDB, SQS, SES, STS) goes to the emulator unchanged.
 */

/** The account moto acts in for an access key it did not issue to an assumed role. */
export const MOTO_DEFAULT_ACCOUNT = '123456789012';

/** What a SigV4 signature says about its caller: `Credential=<key>/<date>/<region>/<service>/aws4_request`. */
export interface SignedScope {
  accessKeyId: string;
  region: string;
  service: string;
}

const CREDENTIAL = /Credential=([^/,\s]+)\/\d{8}\/([^/,\s]+)\/([^/,\s]+)\/aws4_request/;

/** The caller's access key, Region and service from an Authorization header; undefined when it is not SigV4. */
export function signedScope(authorization: string | undefined): SignedScope | undefined {
  const match = CREDENTIAL.exec(authorization ?? '');
  if (!match) return undefined;
  return { accessKeyId: match[1]!, region: match[2]!, service: match[3]! };
}

/**
 * The session key an STS AssumeRole answer hands out and the account it acts in (the
 * AssumedRoleUser's `arn:aws:sts::<account>:assumed-role/...`); undefined for any other answer.
 */
export function assumedRoleCredentials(xml: string): { accessKeyId: string; account: string } | undefined {
  const accessKeyId = /<AccessKeyId>\s*([^<\s]+)\s*<\/AccessKeyId>/.exec(xml)?.[1];
  const account = /<AssumedRoleUser>[\s\S]*?<Arn>\s*arn:[^:<]+:sts::(\d{12}):assumed-role\//.exec(xml)?.[1];
  return accessKeyId && account ? { accessKeyId, account } : undefined;
}

/** Which account each access key acts in: those learned from AssumeRole answers, else the default. */
export class AccountDirectory {
  readonly #accounts = new Map<string, string>();

  constructor(readonly defaultAccount: string = MOTO_DEFAULT_ACCOUNT) {}

  learn(accessKeyId: string, account: string): void {
    this.#accounts.set(accessKeyId, account);
  }

  accountOf(accessKeyId: string): string {
    return this.#accounts.get(accessKeyId) ?? this.defaultAccount;
  }

  /** Session keys learned, per account. */
  sessionsPerAccount(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const account of this.#accounts.values()) counts[account] = (counts[account] ?? 0) + 1;
    return counts;
  }
}

/** An (account, Region) as the budget's name, e.g. `222222222222/us-east-1`. */
export const budgetKey = (where: { account: string; region: string }) => `${where.account}/${where.region}`;

/**
 * The management budget a request draws on: its signer's account and Region for an API Gateway
 * call, undefined for any other request (which no budget limits here).
 */
export function managementBudgetOf(authorization: string | undefined, accounts: AccountDirectory): string | undefined {
  const scope = signedScope(authorization);
  if (scope?.service !== 'apigateway') return undefined;
  return budgetKey({ account: accounts.accountOf(scope.accessKeyId), region: scope.region });
}

export interface ShardBudgetProxy {
  /** http://127.0.0.1:<port>: the value for AWS_ENDPOINT_URL. */
  endpoint: string;
  /** The budget of every (account, Region) that API Gateway calls reached, by budgetKey. */
  budgets(): ReadonlyMap<string, BudgetProxy>;
  accounts: AccountDirectory;
  /** Requests forwarded and the mean seconds each took upstream, by the signer's service. */
  latency(): Record<string, { requests: number; meanSeconds: number }>;
  stop(): Promise<void>;
}

/** A proxy in front of the emulator that enforces API Gateway's management budget per account and Region. */
export async function startShardBudgetProxy(
  target: string,
  budget: { ratePerSecond: number; burst: number } = ACCOUNT_MANAGEMENT_BUDGET,
): Promise<ShardBudgetProxy> {
  const accounts = new AccountDirectory();
  const starting = new Map<string, Promise<BudgetProxy>>();
  const started = new Map<string, BudgetProxy>();
  const upstream = new Agent({ keepAlive: true, maxSockets: 64 });
  // Started once per (account, Region), on its first call; calls arriving meanwhile wait for it.
  const budgetFor = (key: string): Promise<BudgetProxy> => {
    let proxy = starting.get(key);
    if (!proxy) {
      proxy = startBudgetProxy(target, budget).then((ready) => {
        started.set(key, ready);
        return ready;
      });
      starting.set(key, proxy);
    }
    return proxy;
  };

  const upstreamTime = new Map<string, { requests: number; ms: number }>();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const key = managementBudgetOf(header(req.headers, 'authorization'), accounts);
    const to = new URL(key === undefined ? target : (await budgetFor(key)).proxy.endpoint);
    const sentAt = performance.now();
    const answer = await forward(to, req, body, upstream);
    const service = signedScope(header(req.headers, 'authorization'))?.service ?? 'unsigned';
    const spent = upstreamTime.get(service) ?? { requests: 0, ms: 0 };
    upstreamTime.set(service, { requests: spent.requests + 1, ms: spent.ms + performance.now() - sentAt });
    if (isAssumeRole(req, body)) {
      const learned = assumedRoleCredentials(answer.body.toString('utf8'));
      if (learned) accounts.learn(learned.accessKeyId, learned.account);
    }
    res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length) });
    res.end(answer.body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('shard budget proxy: upstream failed');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    budgets: () => started,
    accounts,
    latency: () =>
      Object.fromEntries(
        [...upstreamTime].map(([service, spent]) => [service, { requests: spent.requests, meanSeconds: spent.ms / spent.requests / 1000 }]),
      ),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      upstream.destroy();
      await Promise.all([...starting.values()].map(async (proxy) => (await proxy).proxy.stop()));
    },
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

function forward(to: URL, req: IncomingMessage, body: Buffer, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      // The Host header goes on as the caller sent it: the emulator names queue URLs after it.
      {
        protocol: to.protocol,
        hostname: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), 'content-length': String(body.length) },
        agent,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 502, headers: endToEnd(response.headers), body: Buffer.concat(chunks) }));
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** STS's query protocol: `Action=AssumeRole` in the form body (or the query string). */
function isAssumeRole(req: IncomingMessage, body: Buffer): boolean {
  if (signedScope(header(req.headers, 'authorization'))?.service !== 'sts') return false;
  const action = new URL(req.url ?? '/', 'http://proxy').searchParams.get('Action') ?? new URLSearchParams(body.toString('utf8')).get('Action');
  return action === 'AssumeRole';
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Connection-level headers belong to each hop; everything else goes through unchanged. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length']);

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())) kept[name] = value;
  }
  return kept;
}
