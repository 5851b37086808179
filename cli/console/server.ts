import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../../shared/config';
import { getCustomerPage } from '../../shared/console/customer-page';
import { getOverview } from '../../shared/console/overview';
import { resendOwedEmail } from '../../shared/console/resend-owed-email';
import { customerIdSchema, tierSchema } from '../../shared/core/schemas';
import { tiersOf } from '../../shared/core/shards';
import { changeTier } from '../../shared/customers/change-tier';
import { revokeCustomer } from '../../shared/customers/revoke-customer';
import { NotFoundError, ValidationError } from '../../shared/errors';
import { rotateCustomerKeys } from '../../shared/rotation/rotation-jobs';
import { integer, validate } from '../../shared/validation';
import { describeFailure } from '../failures';
import type { Services } from '../services';
import type { SentEmail } from './emails';
import { customerPage, emailsPage, type Flash, messagePage, overviewPage, type PageContext } from './pages';

export interface ConsoleOptions {
  services: Services;
  config: Config;
  /** For the header: the stack, as `keyplan` names it on stderr. */
  stack: string;
  /** The local stack: the emails page lists what the emulator kept. */
  emails?: (() => Promise<SentEmail[]>) | undefined;
  /** Default 0: a free port the system picks. */
  port?: number | undefined;
  now?: () => Date;
  /** Unexpected failures, one line each (never a stack trace, never a key value). */
  log?: (line: string) => void;
}

export interface RunningConsole {
  /** `http://127.0.0.1:PORT/?token=...`: what to open. */
  url: string;
  origin: string;
  token: string;
  close(): Promise<void>;
}

/** Only this interface: the console acts with the operator's credentials and must not be reachable from elsewhere. */
const HOST = '127.0.0.1';
const MAX_FORM_BYTES = 8 * 1024;
const MAX_FLASHES = 100;

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
};

/** A page for the operator's browser: a status and HTML, or a redirect. */
type Answer = { status: number; body: string; headers?: Record<string, string> } | { redirect: string };

class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * `keyplan console`: the web console, served from this process on 127.0.0.1 with the operator's
 * credentials (issue 17). Every request needs the session token, in the URL (`?token=`, which
 * also sets an HttpOnly, SameSite=Strict cookie so that links work) or that cookie; an action is a
 * POST whose form carries the token too (a cookie alone, which a browser attaches by itself, is
 * not enough for a change). Pages are HTML with inline SVG charts, rendered here.
 */
export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const token = randomBytes(32).toString('base64url');
  const tokenBytes = Buffer.from(token);
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => undefined);
  const tiers = tiersOf(options.config.shards);
  const flashes = new Map<string, Flash>();
  let port = 0;
  const cookieName = () => `keyplan_console_${port}`;

  // Each use case's deps once: built on first use, as the CLI's commands do.
  const memo = <T>(make: () => T) => {
    let made: T | undefined;
    return () => (made ??= make());
  };
  const deps = {
    read: memo(() => options.services.console()),
    rotation: memo(() => options.services.rotation()),
    customers: memo(() => options.services.customers()),
    provisioning: memo(() => options.services.provisioning()),
  };
  const context: PageContext = { token, local: options.emails !== undefined, stack: options.stack };

  const isToken = (candidate: string | undefined) => {
    if (candidate === undefined) return false;
    const bytes = Buffer.from(candidate);
    return bytes.length === tokenBytes.length && timingSafeEqual(bytes, tokenBytes);
  };

  async function answer(request: IncomingMessage, url: URL): Promise<Answer> {
    const host = request.headers.host;
    // DNS rebinding: a page of another site whose name resolves to 127.0.0.1 sends its own Host.
    if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) throw new HttpRefusal(403, 'Refused', 'This console answers only at 127.0.0.1.');
    const method = request.method ?? 'GET';
    const path = url.pathname;
    const action = /^\/customers\/([^/]+)\/(rotate|tier|revoke|resend-email)$/.exec(path);
    if (method === 'POST') {
      const form = await readForm(request);
      if (!isToken(form.get('token') ?? undefined)) throw new HttpRefusal(403, 'Refused', 'An action needs the session token of the console’s URL.');
      if (!action) throw new HttpRefusal(404, 'Not found', 'No such action.');
      return act(pathPart(action[1]!), action[2] as ActionName, form);
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpRefusal(405, 'Method not allowed', 'Pages are read with GET, actions sent with POST.', { allow: 'GET, POST' });
    if (!isToken(url.searchParams.get('token') ?? undefined) && !isToken(cookieOf(request, cookieName()))) {
      throw new HttpRefusal(403, 'Refused', 'Open the console with the URL it printed: it carries the session token.');
    }
    if (action) throw new HttpRefusal(405, 'Method not allowed', 'An action is a POST from its form on the customer’s page.', { allow: 'POST' });
    if (path === '/') {
      return { status: 200, body: overviewPage(await getOverview(now(), deps.read()), context) };
    }
    if (path === '/customers') {
      const id = (url.searchParams.get('id') ?? '').trim();
      if (id === '') return { redirect: '/' };
      return { redirect: `/customers/${encodeURIComponent(id)}` };
    }
    const customer = /^\/customers\/([^/]+)$/.exec(path);
    if (customer) {
      const customerId = validate(customerIdSchema, pathPart(customer[1]!), 'customerId');
      const flashId = url.searchParams.get('flash');
      const flash = flashId ? flashes.get(flashId) : undefined;
      const page = await getCustomerPage(customerId, now(), deps.read());
      return { status: 200, body: customerPage(page, { ...context, tiers, flash, now: now() }) };
    }
    if (path === '/emails' && options.emails) {
      return { status: 200, body: emailsPage(await options.emails(), context) };
    }
    throw new HttpRefusal(404, 'Not found', 'There is no such page.');
  }

  type ActionName = 'rotate' | 'tier' | 'revoke' | 'resend-email';

  /** Runs the action's use case; its outcome, good or bad, is the flash of the customer's page. */
  async function act(rawCustomerId: string, name: ActionName, form: URLSearchParams): Promise<Answer> {
    const customerId = validate(customerIdSchema, rawCustomerId, 'customerId');
    let flash: Flash;
    try {
      flash = { ok: true, message: await runAction(customerId, name, form) };
    } catch (error) {
      const failure = describeFailure(error);
      if (failure.code === 'unexpected-error') log(`console: ${name} of ${customerId} failed: ${failure.message}`);
      flash = { ok: false, message: `${ACTION_TITLES[name]} failed: ${failure.message}` };
    }
    // The overview's kept counts are older than this change, failed or not (it may have half run).
    deps.read().refresh.afterAction();
    const id = randomBytes(9).toString('base64url');
    flashes.set(id, flash);
    if (flashes.size > MAX_FLASHES) flashes.delete(flashes.keys().next().value!);
    return { redirect: `/customers/${encodeURIComponent(customerId)}?flash=${id}` };
  }

  async function runAction(customerId: string, name: ActionName, form: URLSearchParams): Promise<string> {
    const at = now();
    if (name === 'rotate') {
      const raw = (form.get('graceDays') ?? '').trim();
      const graceDays = raw === '' ? undefined : validate(integer({ min: 0, max: 365 }), /^\d+$/.test(raw) ? Number(raw) : raw, 'graceDays');
      const result = await rotateCustomerKeys(customerId, { now: at, graceDays }, deps.rotation());
      const rotated = result.rotations.filter((r) => r.outcome === 'rotated');
      if (result.rotations.length === 0) return `Customer ${customerId} has no ACTIVE key: nothing rotated.`;
      return `Rotated ${rotated.length} of ${result.rotations.length} ACTIVE key(s) with a grace of ${result.graceDays} day(s)${rotated.length > 0 ? `: new ${rotated.map((r) => r.newKeyId).join(', ')}` : ''}.`;
    }
    if (name === 'tier') {
      const tier = validate(tierSchema(tiers), form.get('tier') ?? '', 'tier');
      const result = await changeTier({ customerId, tier, requestId: `keyplan-console-${randomUUID()}`, now: at }, deps.customers());
      return result.changed ? `Tier ${result.from} → ${result.to}: ${result.keys.length} key(s) moved.` : `Already in tier ${result.to}: nothing changed.`;
    }
    if (name === 'revoke') {
      if (form.get('confirm') !== 'yes') throw new ValidationError('confirm', 'tick “yes, disable every key now” to revoke');
      const result = await revokeCustomer({ customerId, now: at }, deps.customers());
      return `Revoked: ${result.disabledKeyIds.length === 0 ? 'no live key to disable' : `disabled ${result.disabledKeyIds.join(', ')}`}.`;
    }
    const result = await resendOwedEmail(customerId, at, deps.provisioning());
    return result.owed ? `The owed email was sent; registration ${result.registrationId} is ${result.state}.` : `Nothing owed: registration ${result.registrationId} is ${result.state}.`;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', `http://${HOST}:${port}`);
    let result: Answer;
    try {
      result = await answer(request, url);
    } catch (error) {
      result = refusalOf(error);
    }
    const headers: Record<string, string> = { ...SECURITY_HEADERS };
    // A valid token in the URL: the cookie lets the console's own links work without it.
    if (isToken(url.searchParams.get('token') ?? undefined)) {
      headers['set-cookie'] = `${cookieName()}=${token}; HttpOnly; SameSite=Strict; Path=/`;
    }
    if ('redirect' in result) {
      response.writeHead(303, { ...headers, location: result.redirect });
      response.end();
      return;
    }
    response.writeHead(result.status, { ...headers, ...result.headers, 'content-type': 'text/html; charset=utf-8' });
    response.end(request.method === 'HEAD' ? undefined : result.body);
  }

  function refusalOf(error: unknown): Answer {
    if (error instanceof HttpRefusal) return { status: error.status, body: messagePage(error.title, error.message), headers: error.headers };
    if (error instanceof NotFoundError) return { status: 404, body: messagePage('Not found', error.message, context) };
    if (error instanceof ValidationError) return { status: 400, body: messagePage('Bad request', error.message, context) };
    const failure = describeFailure(error);
    log(`console: a page failed: ${failure.message}`);
    return { status: failure.exitCode === 4 ? 503 : 500, body: messagePage('The page failed', failure.message, context) };
  }

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('The console failed.');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  // The key counts and the failed registrations read much: started now, before anyone looks.
  deps.read().refresh.prefetch();
  const origin = `http://${HOST}:${port}`;
  return {
    url: `${origin}/?token=${token}`,
    origin,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const ACTION_TITLES = { rotate: 'Rotation', tier: 'Tier change', revoke: 'Revocation', 'resend-email': 'Resending the email' } as const;

/** A segment of the path, decoded; a malformed escape is the request's fault, not the console's. */
function pathPart(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError('customerId', 'is not a valid customer id');
  }
}

function cookieOf(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  const type = request.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) throw new HttpRefusal(415, 'Unsupported', 'Actions are sent by the console’s forms.');
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new HttpRefusal(413, 'Too large', 'The form is too large.');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
