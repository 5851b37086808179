import { mkdir } from 'node:fs/promises';
import { GetApiKeyCommand, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { emulatorEmails } from '../../cli/console/emails';
import { type RunningConsole, startConsole } from '../../cli/console/server';
import { awsServices, type Services } from '../../cli/services';
import { bootstrapLocalStack, functionEnvironment, type LocalStack } from '../../infra/local/bootstrap';
import { meterCalls } from '../../infra/local/emulator';
import { type AwsClients, createAwsClients } from '../../shared/aws/clients';
import { type Config, loadConfig } from '../../shared/config';
import { DAY_MS } from '../../shared/core/model';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { launchChromium } from '../support/browser';
import { createQueuePair, plansOfKey, sentEmailsTo } from '../support/emulator-probe';

// The console in a real headless Chromium (issue 17), over a table, key-name prefix and queues of
// this file's own: what the pages show is checked against what the emulator holds, and the
// screenshots the README links are taken here.
const unique = (label: string) => `${label}${process.pid}x${Date.now().toString(36)}`;
const SCREENSHOTS = 'docs/images';
const prefix = unique('browser');
const CUSTOMERS = {
  acme: { tier: 'basic', registeredDaysAgo: 3 },
  globex: { tier: 'free', registeredDaysAgo: 1 },
  // Registered 80 days ago: its key rotates (90 days) in the console's next 30 days.
  initech: { tier: 'pro', registeredDaysAgo: 80 },
} as const;
type CustomerId = keyof typeof CUSTOMERS;

let stack: LocalStack;
let aws: AwsClients;
let config: Config;
let services: Services;
let running: RunningConsole;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const keyIds = {} as Record<CustomerId, string>;
/** Every page the tests saw, to look for key values in at the end. */
const seen: string[] = [];
/** acme's metered calls per day, oldest first: yesterday and the four days before it. */
const acmeCalls = [120, 0, 340, 75, 410];

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

async function open(path: string): Promise<void> {
  await page.goto(`${running.origin}${path}`);
  seen.push(await page.content());
}

async function emulatorKeyCount(): Promise<number> {
  const { items = [] } = await aws.apiGateway.send(new GetApiKeysCommand({ nameQuery: prefix, limit: 500 }));
  return items.filter((key) => key.name?.startsWith(prefix)).length;
}

beforeAll(async () => {
  stack = await bootstrapLocalStack({ endpoint: inject('localStack').endpoint, tableName: unique('keyplan-browser-') });
  Object.assign(process.env, functionEnvironment(stack));
  aws = createAwsClients();
  const queue = await createQueuePair(aws.sqs, unique('keyplan-browser-queue-'));
  config = loadConfig({ ...functionEnvironment(stack), QUEUE_URL: queue.queueUrl, KEY_NAME_PREFIX: prefix, MANAGEMENT_CALLS_PER_SECOND: '500' });
  services = awsServices(config);
  for (const [customerId, { tier, registeredDaysAgo }] of Object.entries(CUSTOMERS) as [CustomerId, (typeof CUSTOMERS)[CustomerId]][]) {
    const { registration } = await provisionKey(
      {
        registrationId: `${customerId}-${prefix}`,
        request: { customerId, email: `${customerId}@example.com`, tier },
        now: new Date(Date.now() - registeredDaysAgo * DAY_MS),
      },
      services.provisioning(),
    );
    keyIds[customerId] = String(registration.keyId);
  }
  for (const [index, calls] of acmeCalls.entries()) {
    const date = utcDay(Date.now() - (acmeCalls.length - index) * DAY_MS);
    await meterCalls(stack.endpoint, { usagePlanId: String(stack.usagePlans.basic), keyId: keyIds.acme, date, calls });
  }
  // Started once the customers exist: the console reads the account's keys as it starts.
  running = await startConsole({ services, config, stack: 'the local stack', emails: () => emulatorEmails(stack.endpoint) });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  page = await context.newPage();
  await mkdir(SCREENSHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await running?.close();
  services?.close();
  for (const client of Object.values(aws ?? {})) client.destroy();
});

describe('keyplan console in headless Chromium', () => {
  it("draws the overview's gauge and due chart from the emulator's numbers", async () => {
    await open(`/?token=${running.token}`);
    const gauge = page.getByTestId('key-gauge');
    const dueDay = page.locator(`[data-testid="due-chart"] rect[data-day="${utcDay(Date.now() + 10 * DAY_MS)}"]`);

    expect(await gauge.getAttribute('data-used')).toBe(String(await emulatorKeyCount()));
    expect(await gauge.getAttribute('data-ceiling')).toBe('10000');
    expect((await gauge.locator('svg').boundingBox())?.width).toBeGreaterThan(50);
    expect(await page.locator('[data-testid="due-chart"] rect[data-day]').count()).toBe(30);
    expect(await dueDay.getAttribute('data-rotations')).toBe('1');
    expect((await dueDay.boundingBox())?.height).toBeGreaterThan(0);
    expect(await page.getByTestId('queue-depth').getAttribute('data-dlq')).toBe('0');
    await page.screenshot({ path: `${SCREENSHOTS}/console-overview.png`, fullPage: true });
  });

  it("finds a customer by id and shows their key on a timeline and the calls API Gateway metered, day by day", async () => {
    await open(`/?token=${running.token}`);
    await page.getByTestId('customer-search').locator('input[name="id"]').fill('acme');
    await page.getByTestId('customer-search').locator('button').click();
    await page.waitForURL(/\/customers\/acme/);
    seen.push(await page.content());
    const keys = page.locator('[data-testid="key-timeline"] li[data-key-id]');
    const bars = page.locator('[data-testid="usage-chart"] rect[data-day]');
    const used = Object.fromEntries(
      await Promise.all((await bars.all()).map(async (bar) => [await bar.getAttribute('data-day'), Number(await bar.getAttribute('data-used'))])),
    ) as Record<string, number>;
    const busiest = bars.and(page.locator(`[data-day="${utcDay(Date.now() - DAY_MS)}"]`));

    expect(await keys.count()).toBe(1);
    expect(await keys.first().getAttribute('data-key-id')).toBe(keyIds.acme);
    expect(await keys.first().getAttribute('data-state')).toBe('ACTIVE');
    expect(await page.getByTestId('customer-profile').getAttribute('data-tier')).toBe('basic');
    for (const [index, calls] of acmeCalls.entries()) expect(used[utcDay(Date.now() - (acmeCalls.length - index) * DAY_MS)]).toBe(calls);
    expect(await page.getByTestId('usage-chart').getAttribute('data-total')).toBe(String(acmeCalls.reduce((a, b) => a + b, 0)));
    expect((await busiest.boundingBox())?.height).toBeGreaterThan(0);
    expect(Number(await page.getByTestId('audit-trail').getAttribute('data-count'))).toBeGreaterThan(0);
    await page.screenshot({ path: `${SCREENSHOTS}/console-customer.png`, fullPage: true });
  });

  it('rotates a key from the console: the successor exists in the emulator and the old key serves out its grace', async () => {
    await open(`/customers/globex`);
    await page.getByTestId('action-rotate').locator('input[name="graceDays"]').fill('3');
    await page.getByTestId('action-rotate').locator('button').click();
    await page.getByTestId('flash').waitFor();
    seen.push(await page.content());
    const keys = page.locator('[data-testid="key-timeline"] li[data-key-id]');
    const successorId = await keys.and(page.locator('[data-state="ACTIVE"]')).getAttribute('data-key-id');
    const old = await aws.apiGateway.send(new GetApiKeyCommand({ apiKey: keyIds.globex }));

    expect(await page.getByTestId('flash').getAttribute('data-outcome')).toBe('ok');
    expect(await keys.count()).toBe(2);
    expect(successorId).not.toBe(keyIds.globex);
    expect(old.enabled).toBe(true);
    expect(await plansOfKey(aws.apiGateway, String(successorId))).toEqual([stack.usagePlans.free]);
    expect((await aws.apiGateway.send(new GetApiKeyCommand({ apiKey: String(successorId) }))).enabled).toBe(true);
  });

  it("changes a tier from the console: the emulator has the key in the new tier's plan only", async () => {
    await open(`/customers/acme`);
    await page.getByTestId('action-change-tier').locator('select[name="tier"]').selectOption('pro');
    await page.getByTestId('action-change-tier').locator('button').click();
    await page.getByTestId('flash').waitFor();
    seen.push(await page.content());

    expect(await page.getByTestId('flash').getAttribute('data-outcome')).toBe('ok');
    expect(await page.getByTestId('customer-profile').getAttribute('data-tier')).toBe('pro');
    expect(await plansOfKey(aws.apiGateway, keyIds.acme)).toEqual([stack.usagePlans.pro]);
  });

  it('refuses every page and action to a browser without the token', async () => {
    const stranger = await browser.newContext();
    const strangerPage = await stranger.newPage();
    const overview = await strangerPage.goto(`${running.origin}/`);
    const customer = await strangerPage.goto(`${running.origin}/customers/acme`);
    const forged = await strangerPage.request.post(`${running.origin}/customers/acme/revoke`, { form: { confirm: 'yes' } });
    const wrongToken = await strangerPage.goto(`${running.origin}/?token=${'x'.repeat(running.token.length)}`);
    const refusal = await strangerPage.content();
    await stranger.close();

    expect([overview?.status(), customer?.status(), forged.status(), wrongToken?.status()]).toEqual([403, 403, 403, 403]);
    expect(refusal).not.toContain('data-testid="key-gauge"');
    expect((await aws.apiGateway.send(new GetApiKeyCommand({ apiKey: keyIds.acme }))).enabled).toBe(true);
  });

  it('shows no key value on any page, though every emailed value is in the emulator', async () => {
    await open('/emails');
    await open('/customers/initech');
    const values = (
      await Promise.all(Object.keys(CUSTOMERS).map((customerId) => sentEmailsTo(stack.endpoint, `${customerId}@example.com`)))
    )
      .flat()
      .flatMap((email) => email.body.match(/kp_[0-9A-Za-z]+_[0-9A-Za-z]{20,}/g) ?? []);

    // One value per key emailed: the three registrations and globex's successor.
    expect(new Set(values).size).toBe(4);
    expect(seen.length).toBeGreaterThanOrEqual(7);
    for (const html of seen) for (const value of values) expect(html).not.toContain(value);
  });
});
