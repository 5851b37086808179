import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { type Tags, parse } from 'yaml';
import { localLambdaContext } from './lambda-context';

export interface HttpGatewayOptions {
  port: number;
  host?: string;
  /** The file whose functions' http events are served; default: the repository's serverless.yml. */
  serverlessFile?: string;
  /** Receives one line per request; default: silent. */
  log?: (line: string) => void;
}

export interface HttpGateway {
  url: string;
  close(): Promise<void>;
}

interface Route {
  functionName: string;
  method: string;
  /** e.g. /registrations/{id} */
  resource: string;
  segments: string[];
  modulePath: string;
  exportName: string;
}

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

const STAGE = 'local';
/** API Gateway's integration timeout. */
const API_GATEWAY_TIMEOUT_MS = 29_000;
const MAX_BODY_BYTES = 10 * 1024 * 1024; // API Gateway's payload limit
const HANDLER_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

// serverless.yml may use CloudFormation's short intrinsics in `resources`. The gateway reads only
// the functions' handlers and http events, so a tagged value is kept as if it were untagged.
const CLOUDFORMATION_TAGS: Tags = [
  'Ref', 'Sub', 'GetAtt', 'Join', 'Select', 'Split', 'If', 'Equals', 'Not', 'And', 'Or',
  'FindInMap', 'Base64', 'Cidr', 'ImportValue', 'GetAZs', 'Condition', 'Transform',
].flatMap((name) => [
  { tag: `!${name}`, resolve: (value: string) => value },
  { tag: `!${name}`, collection: 'seq' as const, resolve: (value: unknown) => value },
  { tag: `!${name}`, collection: 'map' as const, resolve: (value: unknown) => value },
]);

/**
 * Serves the http events of serverless.yml's functions the way API Gateway (REST, proxy
 * integration) would call them, at the paths without a stage prefix. Handlers run in this process
 * and see its environment, so the caller sets that first.
 */
export async function startHttpGateway(opts: HttpGatewayOptions): Promise<HttpGateway> {
  const { port, host = '127.0.0.1', log } = opts;
  const serverlessFile = resolve(opts.serverlessFile ?? fileURLToPath(new URL('../../serverless.yml', import.meta.url)));
  const routes = await readRoutes(serverlessFile);
  const handlers = new Map<string, Promise<Handler>>();

  const loadHandler = (route: Route): Promise<Handler> => {
    const key = `${route.modulePath}#${route.exportName}`;
    let handler = handlers.get(key);
    if (!handler) {
      handler = import(pathToFileURL(route.modulePath).href).then((module: Record<string, unknown>) => {
        const exported = module[route.exportName];
        if (typeof exported !== 'function') throw new Error(`${route.modulePath} exports no function ${route.exportName}`);
        return exported as Handler;
      });
      // A module that failed to load is tried again on the next request.
      handler.catch(() => handlers.delete(key));
      handlers.set(key, handler);
    }
    return handler;
  };

  const server = createServer((req, res) => {
    const started = Date.now();
    res.on('finish', () => log?.(`${req.method} ${req.url} -> ${res.statusCode} (${Date.now() - started} ms)`));
    handle(req, res, routes, loadHandler).catch((error: unknown) => {
      console.error(`http-gateway: ${req.method} ${req.url} failed:`, error);
      if (!res.headersSent) sendProblem(res, 502, 'Bad Gateway');
      else res.destroy();
    });
  });
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(port, host, () => {
      server.off('error', rejectListen);
      resolveListen();
    });
  });
  const { port: boundPort } = server.address() as AddressInfo;

  return {
    url: `http://${host}:${boundPort}`,
    close: () =>
      new Promise<void>((resolveClose, rejectClose) => {
        server.close((error) => (error ? rejectClose(error) : resolveClose()));
        server.closeAllConnections();
      }),
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  routes: Route[],
  loadHandler: (route: Route) => Promise<Handler>,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const method = req.method ?? 'GET';
  const segments = url.pathname.split('/').filter(Boolean);
  const candidates = routes
    .map((route) => ({ route, pathParameters: matchPath(route.segments, segments) }))
    .filter((match): match is { route: Route; pathParameters: Record<string, string> } =>
      Boolean(match.pathParameters),
    )
    .sort((a, b) => compareSpecificity(a.route.segments, b.route.segments));
  if (candidates.length === 0) return sendProblem(res, 404, 'Not Found', `No route for ${url.pathname}`);
  const match = candidates.find(({ route }) => route.method === method || route.method === 'ANY');
  if (!match) {
    res.setHeader('allow', [...new Set(candidates.map(({ route }) => route.method))].join(', '));
    return sendProblem(res, 405, 'Method Not Allowed', `${method} is not allowed on ${url.pathname}`);
  }

  const body = await readBody(req);
  if (body === undefined) return sendProblem(res, 413, 'Content Too Large');
  const requestId = randomUUID();
  const event = toEvent(req, url, match.route, match.pathParameters, body, requestId);
  const handler = await loadHandler(match.route);
  const result: unknown = await handler(event, localLambdaContext(match.route.functionName, requestId, API_GATEWAY_TIMEOUT_MS));
  if (!isProxyResult(result)) throw new Error(`${match.route.functionName} returned no statusCode`);

  res.statusCode = result.statusCode;
  res.setHeader('x-amzn-requestid', requestId);
  for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, String(value));
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) res.setHeader(name, values.map(String));
  res.end(result.body === undefined ? undefined : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8'));
}

function toEvent(
  req: IncomingMessage,
  url: URL,
  route: Route,
  pathParameters: Record<string, string>,
  body: string,
  requestId: string,
): APIGatewayProxyEvent {
  // rawHeaders keeps the names as the client spelled them, as API Gateway passes them on.
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    (multiValueHeaders[req.rawHeaders[i]!] ??= []).push(req.rawHeaders[i + 1]!);
  }
  const multiValueQuery: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) (multiValueQuery[name] ??= []).push(value);
  const hasQuery = Object.keys(multiValueQuery).length > 0;
  const hasPathParameters = Object.keys(pathParameters).length > 0;
  const sourceIp = req.socket.remoteAddress ?? '127.0.0.1';
  const now = Date.now();

  return {
    resource: route.resource,
    path: url.pathname,
    httpMethod: req.method ?? 'GET',
    headers: lastValues(multiValueHeaders),
    multiValueHeaders,
    queryStringParameters: hasQuery ? lastValues(multiValueQuery) : null,
    multiValueQueryStringParameters: hasQuery ? multiValueQuery : null,
    pathParameters: hasPathParameters ? pathParameters : null,
    stageVariables: null,
    body: body === '' ? null : body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'local',
      authorizer: null,
      domainName: req.headers.host ?? 'localhost',
      httpMethod: req.method ?? 'GET',
      path: `/${STAGE}${url.pathname}`,
      protocol: `HTTP/${req.httpVersion}`,
      requestId,
      requestTime: new Date(now).toISOString(),
      requestTimeEpoch: now,
      resourceId: 'local',
      resourcePath: route.resource,
      stage: STAGE,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp,
        user: null,
        userAgent: req.headers['user-agent'] ?? null,
        userArn: null,
      },
    },
  };
}

async function readRoutes(serverlessFile: string): Promise<Route[]> {
  if (!existsSync(serverlessFile)) throw new Error(`http-gateway: ${serverlessFile} does not exist`);
  const service = parse(await readFile(serverlessFile, 'utf8'), { customTags: CLOUDFORMATION_TAGS }) as {
    functions?: Record<string, { handler?: string; events?: { http?: string | { method?: string; path?: string } }[] }>;
  };
  const routes: Route[] = [];
  for (const [functionName, definition] of Object.entries(service.functions ?? {})) {
    const handler = definition.handler ?? '';
    const dot = handler.lastIndexOf('.');
    if (dot <= 0) throw new Error(`http-gateway: function ${functionName} has no handler like path/file.export`);
    const modulePath = resolveModule(resolve(dirname(serverlessFile), handler.slice(0, dot)));
    for (const { http } of definition.events ?? []) {
      if (!http) continue;
      // `http: POST registrations` is serverless shorthand for { method, path }.
      const [method = '', path = ''] = typeof http === 'string' ? http.trim().split(/\s+/) : [http.method, http.path];
      const segments = path.split('/').filter(Boolean);
      routes.push({
        functionName,
        method: method.toUpperCase(),
        resource: `/${segments.join('/')}`,
        segments,
        modulePath,
        exportName: handler.slice(dot + 1),
      });
    }
  }
  if (routes.length === 0) throw new Error(`http-gateway: ${serverlessFile} declares no http events`);
  return routes;
}

function resolveModule(base: string): string {
  return HANDLER_EXTENSIONS.map((extension) => base + extension).find((file) => existsSync(file)) ?? `${base}.ts`;
}

/** Path parameters if the request path fits the route template, else undefined. */
function matchPath(template: string[], segments: string[]): Record<string, string> | undefined {
  const parameters: Record<string, string> = {};
  for (const [i, part] of template.entries()) {
    const name = /^\{(.+?)(\+)?\}$/.exec(part);
    if (name?.[2]) {
      // A greedy {proxy+} takes the rest of the path, at least one segment.
      if (i >= segments.length) return undefined;
      parameters[name[1]!] = segments.slice(i).map(decode).join('/');
      return parameters;
    }
    const segment = segments[i];
    if (segment === undefined) return undefined;
    if (name) parameters[name[1]!] = decode(segment);
    else if (part !== segment) return undefined;
  }
  return template.length === segments.length ? parameters : undefined;
}

/** Like API Gateway, a literal segment wins over a parameter, and a parameter over a greedy one. */
function compareSpecificity(a: string[], b: string[]): number {
  const rank = (part: string | undefined): number => {
    if (part === undefined) return 3;
    if (part.endsWith('+}')) return 2;
    return part.startsWith('{') ? 1 : 0;
  };
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = rank(a[i]) - rank(b[i]);
    if (difference !== 0) return difference;
  }
  return 0;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function lastValues(multi: Record<string, string[]>): Record<string, string> {
  return Object.fromEntries(Object.entries(multi).map(([name, values]) => [name, values.at(-1) ?? '']));
}

/** The body as UTF-8, or undefined when it is larger than API Gateway accepts. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isProxyResult(value: unknown): value is APIGatewayProxyResult {
  return typeof value === 'object' && value !== null && typeof (value as { statusCode?: unknown }).statusCode === 'number';
}

function sendProblem(res: ServerResponse, status: number, title: string, detail?: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/problem+json');
  res.end(JSON.stringify({ type: 'about:blank', title, status, ...(detail ? { detail } : {}) }));
}
