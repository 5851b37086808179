import type { APIGatewayProxyResult } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { runKeyplan } from '../../cli/run-keyplan';
import { customerReadRoutes } from '../../functions/customer-reads/routes';
import { type Config, loadConfig } from '../../shared/config';
import type { RecordedEvent } from '../../shared/core/events';
import { changeTier } from '../../shared/customers/change-tier';
import { CustomerLedgerTable } from '../../shared/aws/customer-ledger';
import { event } from '../../shared/core/events';
import { httpHandler } from '../../shared/http/handler';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { createCustomerDeps, createProvisioningDeps, createReadDeps } from '../../shared/wiring/compose';
import { apiEvent, lambdaContext } from '../support/api-events';
import { itemsOfCustomer } from '../support/emulator-probe';
import { createAwsClients } from '../../shared/aws/clients';

const stack = inject('localStack');
const EVENTS = 250;
const CUSTOMER = `audit-${process.pid}-${Date.now().toString(36)}`;
let config: Config;

interface Page {
  customerId: string;
  events: RecordedEvent[];
  nextCursor?: string;
}

/** GET /customers/{customerId}/events through the customerReads function's routes. */
async function getEvents(query: Record<string, string> | null, customerId = CUSTOMER): Promise<APIGatewayProxyResult> {
  return httpHandler(customerReadRoutes(createReadDeps(config)))(
    {
      ...apiEvent({ method: 'GET', resource: '/customers/{customerId}/events', pathParameters: { customerId } }),
      queryStringParameters: query,
    },
    lambdaContext(),
  );
}

/** Every page at `limit`, following nextCursor until there is none. */
async function allPages(limit: number): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | undefined;
  do {
    const response = await getEvents({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    expect({ status: response.statusCode, body: response.statusCode === 200 ? '' : response.body }).toEqual({ status: 200, body: '' });
    const page = JSON.parse(response.body) as Page;
    pages.push(page);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return pages;
}

/** `keyplan ARGV` in this process, against the emulator through the environment, as an operator runs it. */
async function keyplan(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runKeyplan({
    argv,
    env: { ...process.env, ...functionEnvironment(stack) },
    cwd: process.cwd(),
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += String(text)), isTTY: false } as unknown as NodeJS.WritableStream,
  });
  return { code, stdout, stderr };
}

function expectWholeTrail(events: RecordedEvent[]) {
  // All of them, newest first, each once, no number missing.
  expect(events.map((e) => e.sequence)).toEqual(Array.from({ length: EVENTS }, (_, i) => EVENTS - i));
  expect(new Set(events.map((e) => e.eventId)).size).toBe(EVENTS);
}

beforeAll(async () => {
  Object.assign(process.env, functionEnvironment(stack));
  config = loadConfig({ ...functionEnvironment(stack), MANAGEMENT_CALLS_PER_SECOND: '500' });

  // Real events from real use cases: a registration (its key provisioned and emailed), then tier
  // changes back and forth until the customer has EVENTS of them.
  await provisionKey(
    { registrationId: CUSTOMER, request: { customerId: CUSTOMER, email: `${CUSTOMER}@example.com`, tier: 'free' }, now: new Date() },
    createProvisioningDeps(config),
  );
  const first = JSON.parse((await getEvents({ limit: '100' })).body) as Page;
  const customers = createCustomerDeps(config);
  // free (registered) -> pro -> free -> ...: every change moves, so every change is one event.
  const tierChanges = 8;
  for (let change = 0; change < tierChanges; change++) {
    const tier = change % 2 === 0 ? 'pro' : 'free';
    await changeTier({ customerId: CUSTOMER, tier, requestId: `audit-${change}`, now: new Date() }, customers);
  }
  // The rest through the customer's ledger as every operation writes them (lease, then a commit
  // with its events), up to 90 to a commit: a tier change per event would take a minute.
  const ledger = new CustomerLedgerTable({ client: createAwsClients().dynamo, tableName: config.tableName });
  for (let written = first.events.length + tierChanges; written < EVENTS; ) {
    const owner = `audit-fill-${written}`;
    const now = new Date();
    const taken = await ledger.acquire(
      CUSTOMER,
      { owner, until: now.getTime() + 60_000, intent: { operation: 'repair' }, mustFinish: false },
      now,
    );
    if (taken.kind !== 'acquired') throw new Error(`the customer's lease was not free: ${taken.kind}`);
    const count = Math.min(90, EVENTS - written);
    const events = Array.from({ length: count }, (_, i) =>
      event('KeyRepaired', { keyId: `audit-key-${written + i}`, usagePlanId: 'plan', tier: 'free', cause: 'repair' }),
    );
    await ledger.commit(CUSTOMER, owner, { events }, now, taken.customer.eventSeq);
    written += count;
  }
}, 300_000);

describe('the audit trail of a customer with 250 events', () => {
  it('GET /customers/{customerId}/events pages through all of them at limit 100: newest first, no repeats, no gaps, no cursor on the last page', async () => {
    // Act
    const pages = await allPages(100);

    // Assess
    expect(pages.map((page) => page.events.length)).toEqual([100, 100, 50]);
    expect(pages.map((page) => page.nextCursor === undefined)).toEqual([false, false, true]);
    expectWholeTrail(pages.flatMap((page) => page.events));
  });

  it('pages through all of them at limit 7 the same way', async () => {
    // Act
    const pages = await allPages(7);

    // Assess
    expect(pages).toHaveLength(Math.ceil(EVENTS / 7));
    expect(pages.slice(0, -1).every((page) => page.events.length === 7 && page.nextCursor !== undefined)).toBe(true);
    expect(pages.at(-1)?.events).toHaveLength(EVENTS % 7);
    expect(pages.at(-1)?.nextCursor).toBeUndefined();
    expectWholeTrail(pages.flatMap((page) => page.events));
  });

  it('answers each event as recorded: the registration first, the tier changes, then the repairs, without table attributes', async () => {
    // Act
    const events = (await allPages(100)).flatMap((page) => page.events).reverse();

    // Assess
    expect(events.slice(0, 2).map((e) => e.type)).toEqual(['KeyProvisioned', 'KeyEmailed']);
    expect(events.slice(2, 10).every((e) => e.type === 'TierChanged')).toBe(true);
    expect(events.slice(10).every((e) => e.type === 'KeyRepaired')).toBe(true);
    expect(events[2]?.detail).toMatchObject({ from: 'free', to: 'pro' });
    expect(events[3]?.detail).toMatchObject({ from: 'pro', to: 'free' });
    for (const e of events) {
      expect(Object.keys(e).sort()).toEqual(['correlationId', 'customerId', 'detail', 'eventId', 'sequence', 'time', 'type']);
      expect(e.customerId).toBe(CUSTOMER);
    }
    // The table holds them as the outbox wrote them: one item each, with the TTL the answer leaves out.
    const items = await itemsOfCustomer(createAwsClients().dynamo, stack.tableName, CUSTOMER);
    const eventItems = items.filter((item) => String(item.sk).startsWith('EVENT#'));
    expect(eventItems).toHaveLength(EVENTS);
    expect(eventItems.every((item) => typeof item.expiresAt === 'number')).toBe(true);
  });

  it('answers 20 by default, refuses a tampered cursor and a limit out of bounds, and 404 for an unknown customer', async () => {
    // Act
    const byDefault = JSON.parse((await getEvents(null)).body) as Page;
    const tampered = await getEvents({ cursor: `${byDefault.nextCursor ?? ''}x` });
    const tooMany = await getEvents({ limit: '101' });
    const unknown = await getEvents(null, `${CUSTOMER}-nobody`);

    // Assess
    expect(byDefault.events).toHaveLength(20);
    expect(byDefault.events[0]?.sequence).toBe(EVENTS);
    expect(tampered.statusCode).toBe(400);
    expect(JSON.parse(tampered.body)).toMatchObject({ field: 'cursor' });
    expect(tooMany.statusCode).toBe(400);
    expect(JSON.parse(tooMany.body)).toMatchObject({ field: 'limit', detail: 'limit must be a whole number from 1 to 100' });
    expect(unknown.statusCode).toBe(404);
  });

  it('keyplan history prints all of them, newest first, as text and as JSON', async () => {
    // Act
    const text = await keyplan(['history', CUSTOMER]);
    const json = await keyplan(['history', CUSTOMER, '--json']);
    const limited = await keyplan(['history', CUSTOMER, '--limit', '7', '--json']);

    // Assess
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`customer ${CUSTOMER}: ${EVENTS} events, newest first`);
    expect(lines[1]).toMatch(/^ {2}SEQ +TIME +TYPE +DETAIL$/);
    expect(lines.slice(2).map((line) => Number(line.trim().split(/ +/)[0]))).toEqual(
      Array.from({ length: EVENTS }, (_, i) => EVENTS - i),
    );
    expect(lines.at(-1)).toMatch(/^ {2}1 +\S+ \S+ +KeyProvisioned +keyId=\S+ tier=free /);
    expect(json.code).toBe(0);
    const printed = JSON.parse(json.stdout) as Page;
    expect(printed.customerId).toBe(CUSTOMER);
    expectWholeTrail(printed.events);
    expect(printed.events).toEqual((await allPages(100)).flatMap((page) => page.events));
    expect((JSON.parse(limited.stdout) as Page).events.map((e) => e.sequence)).toEqual([250, 249, 248, 247, 246, 245, 244]);
  });
});
