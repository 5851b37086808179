import { randomUUID } from 'node:crypto';
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request as httpRequest,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fault-injecting HTTP proxy for the test suite: it sits between the AWS SDK and the emulator
 * (point AWS_ENDPOINT_URL at `endpoint`), forwards every request unchanged and, where a rule hits,
 * answers as a misbehaving AWS would: throttling, a 5xx, a dropped connection (before the call
 * reaches the emulator, or after it took effect there), or a delay.
 *
 * Faults are answered on the wire, so every layer of the SDK (deserializer, error classification,
 * retries, adaptive rate limiting) and of keyplan sees them as it would see AWS's.
 */

/** What a rule does to a request it hits. */
export type Fault =
  /** 429 or 400 in the service's own wire shape, so the SDK classifies it as throttling. */
  | { kind: 'throttle' }
  /** A server error (500 InternalFailure by default, 503 ServiceUnavailable, ...); the call did not happen. */
  | { kind: 'error500'; status?: 500 | 502 | 503 | 504 }
  /** The connection drops before the request reaches the emulator: the call did not happen. */
  | { kind: 'reset-before' }
  /**
   * The request reaches the emulator and takes effect, then the connection drops before the
   * answer reaches the caller: the call happened and the caller cannot know it.
   */
  | { kind: 'reset-after' }
  /** Waits `ms`, then forwards. */
  | { kind: 'delay'; ms: number };

export type FaultKind = Fault['kind'];
export const FAULT_KINDS: readonly FaultKind[] = ['throttle', 'error500', 'reset-before', 'reset-after', 'delay'];

/** A request as the proxy recognised it. */
export interface AwsCall {
  /** From the SigV4 credential scope: `apigateway`, `dynamodb`, `sqs`, `ses`, ...; `moto` for /moto-api. */
  service: string;
  /** The API operation: `CreateApiKey`, `PutItem`, `SendMessage`, `SendEmail`, ... */
  operation: string;
  method: string;
  path: string;
  /** The SDK's attempt number (its `amz-sdk-request` header); 1 without one. */
  attempt: number;
}

export interface FaultRule {
  /** Shown in stats; defaults to the rule's position. */
  name?: string;
  /** One service or several, as in the credential scope (`apigateway`, `dynamodb`, `sqs`, `ses`). */
  service?: string | readonly string[];
  /** Operation names (`CreateApiKey`, `TransactWriteItems`, ...) or a predicate over the call. */
  operation?: string | readonly string[] | ((call: AwsCall) => boolean);
  /** Share of the matching calls to hit, 0..1 (default 1), drawn from the proxy's seeded PRNG. */
  share?: number;
  /** Only calls in this window (epoch ms, `from` included, `until` excluded) match. */
  window?: { from?: number; until?: number };
  /** Only the first N calls that match service, operation and window are eligible. */
  firstCalls?: number;
  fault: Fault;
}

export interface FaultProxyOptions {
  /** The emulator's endpoint, e.g. http://127.0.0.1:4566. */
  target: string;
  rules?: readonly FaultRule[];
  /** Seeds the PRNG behind `share`: the same seed and the same calls hit the same calls. */
  seed?: number;
  /**
   * DynamoDB makes TransactWriteItems idempotent: a retry carrying the same ClientRequestToken
   * (the SDK fills one and keeps it across its retries) within 10 minutes succeeds without
   * applying the writes again. moto ignores the token, so after a `reset-after` the SDK's retry
   * would fail its conditions where AWS answers success. With this on (the default) the proxy
   * remembers the answer to each token it forwarded and replays it to a repeat, as DynamoDB does.
   */
  transactionTokens?: boolean;
}

export interface FaultProxyStats {
  /** Requests received, per `service.operation`. */
  calls: Record<string, number>;
  /** Requests whose `amz-sdk-request` header says they were an SDK retry (attempt > 1). */
  sdkRetries: number;
  /** Faults injected, per kind. */
  faults: Record<FaultKind, number>;
  /** Faults injected, per `service.operation` and kind. */
  faultsByOperation: Record<string, Partial<Record<FaultKind, number>>>;
  /** Faults injected, per rule name. */
  faultsByRule: Record<string, number>;
  /** TransactWriteItems repeats answered from a remembered ClientRequestToken. */
  replayedTransactions: number;
  /** Requests the emulator itself failed to answer (connection refused, ...); answered 502. */
  upstreamErrors: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:<port>: the value for AWS_ENDPOINT_URL. */
  endpoint: string;
  /** Replaces the rules; each rule's PRNG and counters start afresh. */
  setRules(rules: readonly FaultRule[]): void;
  /** A snapshot of the counters since start. */
  stats(): FaultProxyStats;
  stop(): Promise<void>;
}

interface ActiveRule {
  rule: FaultRule;
  name: string;
  random: () => number;
  matched: number;
}

const TOKEN_TTL_MS = 10 * 60_000;

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const seed = options.seed ?? 1;
  const rememberTokens = options.transactionTokens ?? true;
  const upstream = new Agent({ keepAlive: true, maxSockets: 32 });
  const stats = emptyStats();
  const tokens = new Map<string, { at: number; answer: Answer }>();
  let rules: ActiveRule[] = [];

  const setRules = (next: readonly FaultRule[]) => {
    rules = next.map((rule, index) => ({
      rule,
      name: rule.name ?? `rule-${index}`,
      // One stream per rule: which calls a rule hits depends only on the calls it matches.
      random: mulberry32(seed * 1_000_003 + index * 7919),
      matched: 0,
    }));
  };
  setRules(options.rules ?? []);

  /** The first rule that hits the call, if any; every matching rule draws, hit or not. */
  const faultFor = (call: AwsCall): { fault: Fault; rule: string } | undefined => {
    const now = Date.now();
    for (const active of rules) {
      const { rule } = active;
      if (!matches(rule, call, now)) continue;
      active.matched++;
      if (rule.firstCalls !== undefined && active.matched > rule.firstCalls) continue;
      const share = rule.share ?? 1;
      if (share < 1 && active.random() >= share) continue;
      return { fault: rule.fault, rule: active.name };
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, body: Buffer): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const outgoing = httpRequest(
        {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: endToEnd(req.headers),
          agent: upstream,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 502, headers: endToEnd(response.headers), body: Buffer.concat(chunks) }),
          );
          response.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const call = recognize(req, body);
    const key = `${call.service}.${call.operation}`;
    stats.calls[key] = (stats.calls[key] ?? 0) + 1;
    if (call.attempt > 1) stats.sdkRetries++;

    const hit = faultFor(call);
    const fault = hit?.fault;
    if (hit && fault) {
      stats.faults[fault.kind]++;
      const perOperation = (stats.faultsByOperation[key] ??= {});
      perOperation[fault.kind] = (perOperation[fault.kind] ?? 0) + 1;
      stats.faultsByRule[hit.rule] = (stats.faultsByRule[hit.rule] ?? 0) + 1;
    }
    switch (fault?.kind) {
      case 'throttle':
        return send(res, throttleAnswer(call));
      case 'error500':
        return send(res, serverErrorAnswer(call, fault.status ?? 500));
      case 'reset-before':
        return void req.socket.destroy();
      case 'delay':
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        break;
      default:
        break;
    }

    const token = rememberTokens && key === 'dynamodb.TransactWriteItems' ? clientRequestToken(body) : undefined;
    const remembered = token ? tokens.get(token) : undefined;
    let answer: Answer;
    if (remembered && Date.now() - remembered.at < TOKEN_TTL_MS) {
      stats.replayedTransactions++;
      answer = remembered.answer;
    } else {
      try {
        answer = await forward(req, body);
      } catch {
        stats.upstreamErrors++;
        return send(res, { status: 502, headers: { 'content-type': 'text/plain' }, body: Buffer.from('fault proxy: upstream failed') });
      }
      if (token && answer.status === 200) tokens.set(token, { at: Date.now(), answer });
    }

    // The emulator has applied the call and answered; the caller never hears of it.
    if (fault?.kind === 'reset-after') return void req.socket.destroy();
    return send(res, answer);
  };

  const server = createServer((req, res) => {
    // A caller that hung up mid-request leaves nothing to answer.
    handle(req, res).catch(() => res.destroy());
  });
  // The SDK keeps connections alive; a reset drops one, and the SDK opens another.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    setRules,
    stats: () => structuredClone(stats),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      upstream.destroy();
    },
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

function send(res: ServerResponse, answer: Answer): void {
  res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length) });
  res.end(answer.body);
}

function emptyStats(): FaultProxyStats {
  return {
    calls: {},
    sdkRetries: 0,
    faults: { throttle: 0, error500: 0, 'reset-before': 0, 'reset-after': 0, delay: 0 },
    faultsByOperation: {},
    faultsByRule: {},
    replayedTransactions: 0,
    upstreamErrors: 0,
  };
}

function matches(rule: FaultRule, call: AwsCall, now: number): boolean {
  if (rule.service !== undefined && !oneOf(rule.service, call.service)) return false;
  if (rule.operation !== undefined) {
    const wanted = typeof rule.operation === 'function' ? rule.operation(call) : oneOf(rule.operation, call.operation);
    if (!wanted) return false;
  }
  if (rule.window?.from !== undefined && now < rule.window.from) return false;
  if (rule.window?.until !== undefined && now >= rule.window.until) return false;
  return true;
}

const oneOf = (wanted: string | readonly string[], value: string) =>
  typeof wanted === 'string' ? wanted === value : wanted.includes(value);

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same sequence. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Connection-level headers belong to each hop; everything else goes through unchanged. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())) kept[name] = value;
  }
  return kept;
}

function clientRequestToken(body: Buffer): string | undefined {
  try {
    const token = (JSON.parse(body.toString('utf8')) as { ClientRequestToken?: unknown }).ClientRequestToken;
    return typeof token === 'string' ? token : undefined;
  } catch {
    return undefined;
  }
}

/** Which service and operation a request is, from its signature, target header, path or form. */
export function recognize(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>, body: Buffer): AwsCall {
  const method = (req.method ?? 'GET').toUpperCase();
  const url = new URL(req.url ?? '/', 'http://proxy');
  const path = url.pathname;
  const header = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const attempt = Number(/attempt=(\d+)/.exec(header('amz-sdk-request') ?? '')?.[1] ?? 1);
  const target = header('x-amz-target');
  const scope = /Credential=[^/,\s]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(header('authorization') ?? '')?.[1];

  if (path.startsWith('/moto-api')) return { service: 'moto', operation: path, method, path, attempt };
  if (target) {
    // JSON protocol: X-Amz-Target is "<ServicePrefix>.<Operation>" (DynamoDB_20120810.PutItem, AmazonSQS.SendMessage).
    const [prefix = '', operation = target] = target.split('.');
    return { service: scope ?? serviceOfTarget(prefix), operation, method, path, attempt };
  }
  const action = url.searchParams.get('Action') ?? formAction(header('content-type'), body);
  if (action) return { service: scope ?? 'unknown', operation: action, method, path, attempt };
  if (scope === 'apigateway' || scope === undefined) {
    return { service: scope ?? 'unknown', operation: apiGatewayOperation(method, path, url.searchParams), method, path, attempt };
  }
  return { service: scope, operation: `${method} ${templated(path)}`, method, path, attempt };
}

function serviceOfTarget(prefix: string): string {
  if (prefix.startsWith('DynamoDB')) return 'dynamodb';
  if (prefix === 'AmazonSQS') return 'sqs';
  return prefix.toLowerCase();
}

/** Query protocol (SES, and SQS before its JSON protocol): `Action=SendEmail&...` in the form body. */
function formAction(contentType: string | undefined, body: Buffer): string | undefined {
  if (!contentType?.startsWith('application/x-www-form-urlencoded')) return undefined;
  return new URLSearchParams(body.toString('utf8')).get('Action') ?? undefined;
}

/** API Gateway's REST routes (the management API), `{}` standing for an id. */
const API_GATEWAY_ROUTES: Record<string, string> = {
  'POST /apikeys': 'CreateApiKey',
  'GET /apikeys': 'GetApiKeys',
  'GET /apikeys/{}': 'GetApiKey',
  'PATCH /apikeys/{}': 'UpdateApiKey',
  'DELETE /apikeys/{}': 'DeleteApiKey',
  'GET /usageplans': 'GetUsagePlans',
  'POST /usageplans': 'CreateUsagePlan',
  'GET /usageplans/{}': 'GetUsagePlan',
  'PATCH /usageplans/{}': 'UpdateUsagePlan',
  'DELETE /usageplans/{}': 'DeleteUsagePlan',
  'GET /usageplans/{}/keys': 'GetUsagePlanKeys',
  'POST /usageplans/{}/keys': 'CreateUsagePlanKey',
  'GET /usageplans/{}/keys/{}': 'GetUsagePlanKey',
  'DELETE /usageplans/{}/keys/{}': 'DeleteUsagePlanKey',
  'GET /usageplans/{}/usage': 'GetUsage',
  'PATCH /usageplans/{}/keys/{}/usage': 'UpdateUsage',
  'GET /restapis': 'GetRestApis',
  'POST /restapis': 'CreateRestApi',
  'GET /restapis/{}': 'GetRestApi',
  'DELETE /restapis/{}': 'DeleteRestApi',
  'GET /restapis/{}/resources': 'GetResources',
  'POST /restapis/{}/resources/{}': 'CreateResource',
  'PUT /restapis/{}/resources/{}/methods/{}': 'PutMethod',
  'PUT /restapis/{}/resources/{}/methods/{}/integration': 'PutIntegration',
  'GET /restapis/{}/stages': 'GetStages',
  'POST /restapis/{}/deployments': 'CreateDeployment',
  'GET /tags/{}': 'GetTags',
  'PUT /tags/{}': 'TagResource',
};

function apiGatewayOperation(method: string, path: string, query: URLSearchParams): string {
  const route = `${method} ${templated(path)}`;
  if (route === 'POST /apikeys' && query.get('mode') === 'import') return 'ImportApiKeys';
  return API_GATEWAY_ROUTES[route] ?? route;
}

/** REST paths alternate collection and id: /usageplans/{id}/keys/{keyId}. */
function templated(path: string): string {
  const segments = path.split('/').filter(Boolean);
  return `/${segments.map((segment, i) => (i % 2 === 1 ? '{}' : segment)).join('/')}`;
}

/** Throttling as each service answers it on the wire, so the SDK names and retries it as throttling. */
function throttleAnswer(call: AwsCall): Answer {
  const requestId = randomUUID();
  switch (protocolOf(call)) {
    case 'rest-json':
      // API Gateway: 429 TooManyRequestsException, the error type in x-amzn-ErrorType.
      return json(429, { message: 'Too Many Requests' }, { 'x-amzn-errortype': 'TooManyRequestsException', 'x-amzn-requestid': requestId });
    case 'dynamodb':
      return json(
        400,
        { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' },
        { 'x-amzn-requestid': requestId },
        'application/x-amz-json-1.0',
      );
    case 'sqs':
      // SQS's JSON protocol is query-compatible: the query error code travels in x-amzn-query-error;
      // the SDK's model gives RequestThrottled HTTP 403.
      return json(
        403,
        { __type: 'com.amazonaws.sqs#RequestThrottled', message: 'Request is throttled.' },
        { 'x-amzn-query-error': 'RequestThrottled;Sender', 'x-amzn-requestid': requestId },
        'application/x-amz-json-1.0',
      );
    case 'query':
      return xmlError(400, 'Sender', 'Throttling', 'Maximum sending rate exceeded.', requestId);
  }
}

function serverErrorAnswer(call: AwsCall, status: number): Answer {
  const requestId = randomUUID();
  const unavailable = status === 503;
  switch (protocolOf(call)) {
    case 'rest-json':
      return json(
        status,
        { message: unavailable ? 'Service Unavailable' : 'Internal server error' },
        { 'x-amzn-errortype': unavailable ? 'ServiceUnavailableException' : 'InternalFailure', 'x-amzn-requestid': requestId },
      );
    case 'dynamodb':
      return json(
        status,
        {
          __type: unavailable ? 'com.amazonaws.dynamodb.v20120810#ServiceUnavailable' : 'com.amazonaws.dynamodb.v20120810#InternalServerError',
          message: 'Internal server error',
        },
        { 'x-amzn-requestid': requestId },
        'application/x-amz-json-1.0',
      );
    case 'sqs': {
      const code = unavailable ? 'ServiceUnavailable' : 'InternalFailure';
      return json(
        status,
        { __type: `com.amazonaws.sqs#${code}`, message: 'Internal failure' },
        { 'x-amzn-query-error': `${code};Receiver`, 'x-amzn-requestid': requestId },
        'application/x-amz-json-1.0',
      );
    }
    case 'query':
      return xmlError(status, 'Receiver', unavailable ? 'ServiceUnavailable' : 'InternalFailure', 'Internal failure', requestId);
  }
}

function protocolOf(call: AwsCall): 'rest-json' | 'dynamodb' | 'sqs' | 'query' {
  if (call.service === 'dynamodb') return 'dynamodb';
  if (call.service === 'sqs') return 'sqs';
  if (call.service === 'ses' || call.service === 'email') return 'query';
  return 'rest-json';
}

function json(status: number, body: object, headers: Record<string, string>, contentType = 'application/json'): Answer {
  return { status, headers: { 'content-type': contentType, ...headers }, body: Buffer.from(JSON.stringify(body)) };
}

function xmlError(status: number, type: string, code: string, message: string, requestId: string): Answer {
  const body =
    '<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">' +
    `<Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error>` +
    `<RequestId>${requestId}</RequestId></ErrorResponse>`;
  return { status, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body: Buffer.from(body) };
}
