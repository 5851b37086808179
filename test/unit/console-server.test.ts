import { afterEach, describe, expect, it } from 'vitest';
import { startConsole, type RunningConsole } from '../../cli/console/server';
import { loadConfig } from '../../shared/config';
import type { RecordedEvent } from '../../shared/core/events';
import { newKeyValue } from '../../shared/core/key-value';
import { type ConsoleExtras, servicesOverWorld } from '../support/console-fakes';
import { aRegisteredCustomer, aWorld, profileOf } from '../support/in-memory-fixtures';
import { TIER_MAP } from '../support/in-memory-model';
import type { InMemoryWorld } from '../support/in-memory-world';

const config = loadConfig({ TABLE_NAME: 'keyplan-test', TIER_MAP: JSON.stringify(TIER_MAP), SENDER_EMAIL: 'keys@example.com' });
/** Something of a key value's shape, put where the console must never show it. */
const LEAKED = newKeyValue('home');

let running: RunningConsole | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function aConsole(world: InMemoryWorld, extras: ConsoleExtras = {}, emails?: () => Promise<{ to: string[]; subject: string; body: string }[]>) {
  running = await startConsole({ services: servicesOverWorld(world, extras), config, stack: 'the test world', now: world.clock, emails });
  return running;
}

/** A request as the browser sends it, with the session cookie or the token in the URL when given. */
function request(path: string, init: RequestInit & { cookie?: string } = {}) {
  const { cookie, ...rest } = init;
  return fetch(`${running!.origin}${path}`, { redirect: 'manual', ...rest, headers: { ...(cookie ? { cookie } : {}), ...(rest.headers as object) } });
}
const withToken = (path: string) => `${path}${path.includes('?') ? '&' : '?'}token=${running!.token}`;
const page = async (path: string) => {
  const response = await request(withToken(path));
  return { status: response.status, text: await response.text(), response };
};
const post = (path: string, fields: Record<string, string>) =>
  request(path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

/** The data attributes of the first element carrying this test id. */
function testId(html: string, id: string): Record<string, string> {
  const tag = new RegExp(`<[a-z]+[^>]*data-testid="${id}"[^>]*>`).exec(html)?.[0];
  if (!tag) throw new Error(`no element with data-testid=${id}`);
  return Object.fromEntries([...tag.matchAll(/(data-[a-z-]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

describe('the console server', () => {
  describe('session token', () => {
    it('refuses a page without the token, or with another, with a short 403 page', async () => {
      await aConsole(aWorld());

      const missing = await request('/');
      const wrong = await request(`/?token=${'x'.repeat(43)}`);
      const wrongCookie = await request('/', { cookie: `keyplan_console_${new URL(running!.origin).port}=nope` });

      for (const response of [missing, wrong, wrongCookie]) {
        expect(response.status).toBe(403);
        const text = await response.text();
        expect(text).toContain('session token');
        expect(text).not.toMatch(/\n\s+at /);
      }
    });

    it('serves a page for the token in the URL and sets an HttpOnly, SameSite=Strict cookie that works alone', async () => {
      await aConsole(aWorld());

      const first = await page('/');
      const cookie = first.response.headers.get('set-cookie') ?? '';
      const again = await request('/', { cookie: cookie.split(';')[0] });

      expect(first.status).toBe(200);
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Strict/);
      expect(again.status).toBe(200);
      expect(first.response.headers.get('content-security-policy')).toContain("default-src 'none'");
    });

    it('refuses an action without the token in its form, even with the cookie, and changes nothing', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aConsole(world);
      const cookie = `keyplan_console_${new URL(running!.origin).port}=${running!.token}`;

      const none = await post('/customers/c1/tier', { tier: 'pro' });
      const wrong = await post('/customers/c1/tier', { tier: 'pro', token: 'wrong' });
      const cookieOnly = await request('/customers/c1/tier', {
        method: 'POST',
        cookie,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'tier=pro',
      });

      expect([none.status, wrong.status, cookieOnly.status]).toEqual([403, 403, 403]);
      expect(profileOf(world, 'c1').tier).toBe('free');
    });

    it('refuses an action sent with GET, token or not', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aConsole(world);

      const response = await request(withToken('/customers/c1/revoke') + '&confirm=yes');

      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
      expect(profileOf(world, 'c1').status).toBe('ACTIVE');
    });

    it('refuses a request naming another host (DNS rebinding)', async () => {
      await aConsole(aWorld());
      const { request: httpRequest } = await import('node:http');

      const status = await new Promise<number>((resolve, reject) => {
        const call = httpRequest(withToken(`${running!.origin}/`), { headers: { host: 'evil.example.com' } }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        call.on('error', reject);
        call.end();
      });

      expect(status).toBe(403);
    });
  });

  describe('actions', () => {
    it('rotates through the rotation use case and redirects to the customer page with a flash', async () => {
      const world = aWorld();
      const key = await aRegisteredCustomer(world, 'c1');
      await aConsole(world);

      const response = await post('/customers/c1/rotate', { token: running!.token, graceDays: '0' });
      const location = response.headers.get('location') ?? '';
      const after = await page(location);

      expect(response.status).toBe(303);
      expect(location).toMatch(/^\/customers\/c1\?flash=/);
      expect(testId(after.text, 'flash')['data-outcome']).toBe('ok');
      expect(after.text).toContain('Rotated 1 of 1 ACTIVE key(s) with a grace of 0 day(s)');
      expect(profileOf(world, 'c1').keys[key.keyId]).not.toBe('ACTIVE');
    });

    it('changes the tier through the tier change use case', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aConsole(world);

      const response = await post('/customers/c1/tier', { token: running!.token, tier: 'pro' });
      const after = await page(response.headers.get('location') ?? '');

      expect(profileOf(world, 'c1').tier).toBe('pro');
      expect(after.text).toContain('Tier free → pro');
      expect(testId(after.text, 'tier-history')['data-count']).toBe('1');
    });

    it('revokes only with the confirmation ticked', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aConsole(world);

      const unconfirmed = await page((await post('/customers/c1/revoke', { token: running!.token })).headers.get('location') ?? '');
      const statusBefore = profileOf(world, 'c1').status;
      await post('/customers/c1/revoke', { token: running!.token, confirm: 'yes' });

      expect(testId(unconfirmed.text, 'flash')['data-outcome']).toBe('error');
      expect(statusBefore).toBe('ACTIVE');
      expect(profileOf(world, 'c1').status).toBe('REVOKED');
    });

    it('says a failed action in the flash: an unknown tier, a bad grace, an unknown customer', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aConsole(world);

      const tier = await page((await post('/customers/c1/tier', { token: running!.token, tier: 'platinum' })).headers.get('location') ?? '');
      const grace = await page((await post('/customers/c1/rotate', { token: running!.token, graceDays: '-1' })).headers.get('location') ?? '');
      const unknown = await post('/customers/nobody/rotate', { token: running!.token });

      expect(tier.text).toMatch(/data-testid="flash"[^>]*data-outcome="error"[^>]*>Tier change failed: tier must be one of: free, pro/);
      expect(grace.text).toContain('Rotation failed: graceDays');
      expect(unknown.status).toBe(303);
      expect((await page(unknown.headers.get('location') ?? '')).status).toBe(404);
      expect(profileOf(world, 'c1').tier).toBe('free');
    });

    it('resends nothing when nothing is owed', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aConsole(world);
      const emails = world.emails.length;

      const after = await page((await post('/customers/c1/resend-email', { token: running!.token })).headers.get('location') ?? '');

      expect(after.text).toContain('Nothing owed: registration c1-r0 is ACTIVE');
      expect(world.emails).toHaveLength(emails);
    });
  });

  describe('pages', () => {
    it('shows the overview with its test ids and numbers', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aRegisteredCustomer(world, 'c2');
      await aConsole(world, { queues: { queue: 3, dlq: 1, queues: 1 } });

      const { status, text } = await page('/');

      expect(status).toBe(200);
      expect(testId(text, 'key-gauge')).toMatchObject({ 'data-used': '2', 'data-ceiling': '10000' });
      expect(testId(text, 'queue-depth')).toMatchObject({ 'data-queue': '3', 'data-dlq': '1' });
      expect(text).toMatch(/<tr data-state="ACTIVE" data-count="2">/);
      expect(text.match(/<rect data-day="\d{4}-\d{2}-\d{2}" data-rotations="\d+" data-retirements="\d+"/g)).toHaveLength(30);
      for (const id of ['keys-by-state', 'due-chart', 'stalled-registrations', 'recent-failures', 'customer-search']) testId(text, id);
    });

    it('shows a customer page with every test id, one timeline item per key', async () => {
      const world = aWorld();
      const key = await aRegisteredCustomer(world, 'c1');
      await aConsole(world, { usage: async () => [[5, 995], [7, 993]] });
      await post('/customers/c1/rotate', { token: running!.token });

      const { text } = await page('/customers/c1');

      expect(testId(text, 'customer-profile')).toMatchObject({ 'data-customer-id': 'c1', 'data-tier': 'free', 'data-status': 'ACTIVE' });
      expect(text).toMatch(new RegExp(`<li data-key-id="${key.keyId}" data-state="RETIRING"`));
      expect(text.match(/<li data-key-id=/g)).toHaveLength(2);
      expect(text.match(/<rect data-day="[^"]+" data-used="\d+"/g)).toHaveLength(30);
      for (const id of ['tier-history', 'key-timeline', 'usage-chart', 'audit-trail', 'action-rotate', 'action-change-tier', 'action-revoke', 'action-resend-email']) {
        testId(text, id);
      }
      expect(text).toMatch(/data-testid="action-rotate"[\s\S]*?name="graceDays"/);
      expect(text).toMatch(/data-testid="action-change-tier"[\s\S]*?<select name="tier">/);
      expect(text).toMatch(/data-testid="action-revoke"[\s\S]*?name="confirm"/);
    });

    it('finds a customer from the search form, and answers 404 for an unknown one', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aConsole(world);

      const search = await request(withToken('/customers?id=c1'));
      const unknown = await page('/customers/nobody');
      const nowhere = await page('/nowhere');
      const malformed = await page('/customers/%E0%A4%A');

      expect(search.status).toBe(303);
      expect(malformed.status).toBe(400);
      expect(search.headers.get('location')).toBe('/customers/c1');
      expect(unknown.status).toBe(404);
      expect(nowhere.status).toBe(404);
    });

    it('escapes every value it shows', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      const attack = '<script>alert(1)</script>"\'';
      await aConsole(world, {
        failures: [{ registrationId: 'r<b>', customerId: 'c"1', tier: 'free', failureReason: attack, updatedAt: '2026-03-02T08:00:00.000Z' }],
        events: [anEvent({ note: attack })],
      });

      const overview = await page('/');
      const customer = await page('/customers/c1');

      for (const text of [overview.text, customer.text]) {
        expect(text).not.toContain('<script>');
        expect(text).not.toContain('<b>');
      }
      expect(overview.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;');
      expect(customer.text).toContain('note=&lt;script&gt;');
    });

    it('answers a page that fails with a short message, never a stack trace', async () => {
      const world = aWorld();
      const services = servicesOverWorld(world);
      running = await startConsole({
        services: { ...services, console: () => ({ ...services.console(), queues: { depths: () => Promise.reject(new TypeError('boom')) } }) },
        config,
        stack: 'test',
        now: world.clock,
      });

      const { status, text } = await page('/');

      expect(status).toBe(500);
      expect(text).toContain('The page failed');
      expect(text).not.toMatch(/\n\s+at /);
    });
  });

  describe('key values', () => {
    it('never shows one on any page, wherever the data holds one', async () => {
      const world = aWorld();
      await aRegisteredCustomer(world, 'c1');
      await aRegisteredCustomer(world, 'c2');
      const values = [...world.keyValues.keys()];
      await aConsole(
        world,
        {
          failures: [{ registrationId: 'r1', customerId: 'c1', tier: 'free', failureReason: `leaked ${LEAKED}`, updatedAt: '2026-03-02T08:00:00.000Z' }],
          events: [anEvent({ leaked: LEAKED })],
        },
        async () => world.emails.map((email) => ({ to: [email.to], subject: `Your key ${LEAKED}`, body: email.text })),
      );
      await post('/customers/c1/rotate', { token: running!.token });

      const pages = await Promise.all(['/', '/customers/c1', '/customers/c2', '/emails'].map(page));

      expect(pages.map((p) => p.status)).toEqual([200, 200, 200, 200]);
      expect(world.emails.some((email) => values.some((value) => email.text.includes(value)))).toBe(true);
      for (const { text } of pages) {
        expect(text).not.toContain(LEAKED);
        expect(text).not.toMatch(/kp_[a-z0-9]{1,12}_[0-9A-Za-z]{33}/);
        for (const value of world.keyValues.keys()) expect(text).not.toContain(value);
      }
      expect(pages[3]!.text).toContain('data-testid="emails"');
    });
  });
});

function anEvent(detail: RecordedEvent['detail']): RecordedEvent {
  return { sequence: 1, type: 'KeyRotated', time: '2026-03-02T08:00:00.000Z', eventId: 'e1', customerId: 'c1', correlationId: 'op-1', detail };
}
