import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { customerReadRoutes } from '../../functions/customer-reads/routes';
import { getCustomerHistory, MAX_HISTORY_LIMIT } from '../../shared/audit/customer-history';
import { decodeCursor, encodeCursor } from '../../shared/audit/history-cursor';
import type { EventHistory } from '../../shared/audit/ports';
import { EventHistoryTable } from '../../shared/aws/event-history-table';
import { eventKey } from '../../shared/aws/table-keys';
import type { RecordedEvent } from '../../shared/core/events';
import { NotFoundError, TransientAwsError, ValidationError } from '../../shared/errors';
import { httpHandler } from '../../shared/http/handler';
import { readDeps } from '../../shared/wiring/reads';
import { apiEvent, lambdaContext } from '../support/api-events';
import { awsError, mockedProvisioning } from '../support/provisioning-fakes';

const TABLE = 'keyplan-test';
const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/** Event `sequence` of cust-1: a tier change, as the outbox records one. */
const anEvent = (sequence: number, customerId = 'cust-1'): RecordedEvent => ({
  sequence,
  type: 'TierChanged',
  time: new Date(Date.UTC(2026, 2, 1, 0, 0, sequence)).toISOString(),
  eventId: `event-${sequence}`,
  customerId,
  correlationId: `op-${sequence}`,
  detail: { from: sequence % 2 ? 'free' : 'pro', to: sequence % 2 ? 'pro' : 'free', keyIds: ['key-1'] },
});

/** The event's item as the outbox writes it: the event, its table key and its TTL. */
const eventItem = (sequence: number, customerId = 'cust-1') => ({
  ...eventKey(customerId, sequence),
  ...anEvent(sequence, customerId),
  expiresAt: 1_800_000_000,
});

/** The port over a list, as the adapter answers: newest first, below `before`, `next` only when older ones remain. */
function historyOf(count: number, options: { knows?: boolean } = {}) {
  const reads: { limit: number; before?: number | undefined }[] = [];
  let asked = 0;
  const events = Array.from({ length: count }, (_, i) => anEvent(count - i));
  const history: EventHistory = {
    page: async (_customerId, request) => {
      reads.push(request);
      const older = events.filter((e) => request.before === undefined || e.sequence < request.before);
      const shown = older.slice(0, request.limit);
      return older.length > request.limit ? { events: shown, next: shown.at(-1)?.sequence } : { events: shown };
    },
    knows: async () => {
      asked += 1;
      return options.knows ?? count > 0;
    },
  };
  return { deps: { history }, reads, asked: () => asked };
}

async function refusal(work: Promise<unknown>): Promise<ValidationError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

describe('getCustomerHistory', () => {
  it('answers the 20 newest events, newest first, and a cursor to the older ones', async () => {
    // Prepare
    const { deps, reads } = historyOf(30);

    // Act
    const page = await getCustomerHistory('cust-1', {}, deps);

    // Assess
    expect(reads).toEqual([{ limit: 20, before: undefined }]);
    expect(page.customerId).toBe('cust-1');
    expect(page.events.map((e) => e.sequence)).toEqual(Array.from({ length: 20 }, (_, i) => 30 - i));
    expect(page.nextCursor).toBe(encodeCursor(11));
  });

  it('pages through every event once, in order, and the last page has no cursor', async () => {
    // Prepare
    const { deps } = historyOf(50);
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;

    // Act
    do {
      const page = await getCustomerHistory('cust-1', { limit: '7', cursor }, deps);
      seen.push(...page.events.map((e) => e.sequence));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor);

    // Assess
    expect(pages).toBe(8);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => 50 - i));
  });

  it('answers an empty trail for a customer without events, asking whether it exists only then', async () => {
    // Prepare
    const withEvents = historyOf(3);
    const withoutEvents = historyOf(0, { knows: true });

    // Act
    await getCustomerHistory('cust-1', {}, withEvents.deps);
    const empty = await getCustomerHistory('cust-1', {}, withoutEvents.deps);

    // Assess
    expect(withEvents.asked()).toBe(0);
    expect(empty).toEqual({ customerId: 'cust-1', events: [] });
    expect(withoutEvents.asked()).toBe(1);
  });

  it('refuses a customer it does not know with NotFoundError', async () => {
    // Prepare
    const { deps } = historyOf(0, { knows: false });

    // Act
    const error = await getCustomerHistory('ghost', {}, deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toBe('no customer ghost');
  });

  it.each([[0], [101], [-1], [2.5], ['0'], ['101'], ['-1'], ['2.5'], ['ten'], [''], [' 5'], ['1e2'], ['0x10']])(
    'refuses limit %j in words, before any read',
    async (limit) => {
      // Prepare
      const { deps, reads } = historyOf(5);

      // Act
      const error = await refusal(getCustomerHistory('cust-1', { limit }, deps));

      // Assess
      expect(error.field).toBe('limit');
      expect(error.message).toBe(`limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}`);
      expect(reads).toEqual([]);
    },
  );

  it.each([[1], ['1'], [100], ['100'], ['007']])('takes limit %j', async (limit) => {
    // Prepare
    const { deps, reads } = historyOf(5);

    // Act
    await getCustomerHistory('cust-1', { limit }, deps);

    // Assess
    expect(reads).toEqual([{ limit: Number(limit), before: undefined }]);
  });

  it.each([
    ['not base64url', 'not a cursor!'],
    ['padded', `${encodeCursor(5)}==`],
    ['base64url of something else', base64url('{"sk":"EVENT#000000000005"}')],
    ['another version', base64url('v2.5')],
    ['no number', base64url('v1.')],
    ['sequence zero', base64url('v1.0')],
    ['a leading zero', base64url('v1.05')],
    ['more than 12 digits', base64url('v1.1234567890123')],
    ['a negative sequence', base64url('v1.-5')],
    ['the same bytes spelt with other spare bits', 'djEuNR'],
    ['too long', 'A'.repeat(33)],
    ['truncated', encodeCursor(12345).slice(0, -2)],
  ])('refuses a tampered cursor (%s) in words, before any read', async (_, cursor) => {
    // Prepare
    const { deps, reads } = historyOf(5);

    // Act
    const error = await refusal(getCustomerHistory('cust-1', { cursor }, deps));

    // Assess
    expect(error.field).toBe('cursor');
    expect(error.message).toBe(
      'cursor is not a cursor this API gave out: pass a nextCursor unchanged, or leave it out to start from the newest event',
    );
    expect(reads).toEqual([]);
  });
});

describe('the history cursor', () => {
  it.each([[1], [42], [999_999_999_999]])('reads back the sequence number %d it was made from', (sequence) => {
    expect(decodeCursor(encodeCursor(sequence))).toBe(sequence);
    expect(encodeCursor(sequence)).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
  });

  it('is opaque: no sort key, table or customer in it', () => {
    expect(encodeCursor(5)).toBe('djEuNQ');
    expect(Buffer.from(encodeCursor(5), 'base64url').toString()).not.toMatch(/EVENT|CUSTOMER|#/);
  });
});

describe('EventHistoryTable', () => {
  function table() {
    const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
    const dynamoMock = mockClient(dynamo);
    return { dynamoMock, history: new EventHistoryTable({ client: dynamo, tableName: TABLE }) };
  }

  it("queries the customer's event items backwards, one more than the page, consistently", async () => {
    // Prepare
    const { dynamoMock, history } = table();
    dynamoMock.on(QueryCommand).resolves({ Items: [] });

    // Act
    await history.page('cust-1', { limit: 20 });
    await history.page('cust-1', { limit: 7, before: 42 });

    // Assess
    const [first, next] = dynamoMock.commandCalls(QueryCommand).map((call) => call.args[0].input);
    expect(first).toEqual({
      TableName: TABLE,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :events)',
      ExpressionAttributeValues: { ':pk': 'CUSTOMER#cust-1', ':events': 'EVENT#' },
      ScanIndexForward: false,
      Limit: 21,
      ConsistentRead: true,
    });
    expect(next).toMatchObject({
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :events AND :below',
      ExpressionAttributeValues: { ':pk': 'CUSTOMER#cust-1', ':events': 'EVENT#', ':below': 'EVENT#000000000041' },
      ScanIndexForward: false,
      Limit: 8,
    });
  });

  it('answers the events without their table attributes, and `next` only when an older one came back', async () => {
    // Prepare
    const { dynamoMock, history } = table();
    dynamoMock
      .on(QueryCommand)
      .resolvesOnce({ Items: [eventItem(5), eventItem(4), eventItem(3)], LastEvaluatedKey: eventKey('cust-1', 3) })
      .resolvesOnce({ Items: [eventItem(2), eventItem(1)] });

    // Act
    const full = await history.page('cust-1', { limit: 2 });
    const last = await history.page('cust-1', { limit: 2, before: 3 });

    // Assess
    expect(full).toEqual({ events: [anEvent(5), anEvent(4)], next: 4 });
    expect(Object.keys(full.events[0] ?? {}).sort()).toEqual(
      ['correlationId', 'customerId', 'detail', 'eventId', 'sequence', 'time', 'type'].sort(),
    );
    expect(last).toEqual({ events: [anEvent(2), anEvent(1)] });
  });

  it('reads on past a page DynamoDB cut short (1 MB) until it has one more than asked', async () => {
    // Prepare
    const { dynamoMock, history } = table();
    dynamoMock
      .on(QueryCommand)
      .resolvesOnce({ Items: [eventItem(9), eventItem(8)], LastEvaluatedKey: eventKey('cust-1', 8) })
      .resolvesOnce({ Items: [eventItem(7), eventItem(6)], LastEvaluatedKey: eventKey('cust-1', 6) })
      .resolves({ Items: [eventItem(5)] });

    // Act
    const page = await history.page('cust-1', { limit: 3 });

    // Assess
    expect(page.events.map((e) => e.sequence)).toEqual([9, 8, 7]);
    expect(page.next).toBe(7);
    expect(dynamoMock.commandCalls(QueryCommand)).toHaveLength(2);
    expect(dynamoMock.commandCalls(QueryCommand)[1]?.args[0].input.ExclusiveStartKey).toEqual(eventKey('cust-1', 8));
  });

  it('keeps plain detail values and turns a string set into a list', async () => {
    // Prepare
    const { dynamoMock, history } = table();
    const item = { ...eventItem(1), detail: { keyIds: new Set(['b', 'a']), graceDays: 0, flag: true, nested: { no: 1 } } };
    dynamoMock.on(QueryCommand).resolves({ Items: [item] });

    // Act
    const page = await history.page('cust-1', { limit: 1 });

    // Assess
    expect(page.events[0]?.detail).toEqual({ keyIds: ['b', 'a'], graceDays: 0, flag: true });
  });

  it.each([
    ['no profile', undefined, false],
    ['a registered customer', { status: 'ACTIVE' }, true],
    ['a revoked customer', { status: 'REVOKED' }, true],
    ['a revoked customer registering again', { status: 'PENDING', priorStatus: 'REVOKED' }, true],
    ['a first registration in flight', { status: 'PENDING' }, false],
    ['a customer never registered', { status: 'UNREGISTERED' }, false],
    ['a customer never registered whose registration failed (an event)', { status: 'UNREGISTERED', eventSeq: 1 }, true],
  ])('knows %s: %s', async (_, profile, known) => {
    // Prepare
    const { dynamoMock, history } = table();
    dynamoMock.on(GetCommand).resolves(profile ? { Item: { pk: 'CUSTOMER#cust-1', ...profile } } : {});

    // Act
    const answer = await history.knows('cust-1');

    // Assess
    expect(answer).toBe(known);
    expect(dynamoMock.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({
      TableName: TABLE,
      Key: { pk: 'CUSTOMER#cust-1', sk: 'PROFILE' },
      ConsistentRead: true,
    });
  });

  it('turns DynamoDB throttling into TransientAwsError', async () => {
    // Prepare
    const { dynamoMock, history } = table();
    dynamoMock.on(QueryCommand).rejects(awsError('ProvisionedThroughputExceededException'));
    dynamoMock.on(GetCommand).rejects(awsError('ProvisionedThroughputExceededException'));

    // Act / Assess
    await expect(history.page('cust-1', { limit: 1 })).rejects.toBeInstanceOf(TransientAwsError);
    await expect(history.knows('cust-1')).rejects.toBeInstanceOf(TransientAwsError);
  });
});

describe('GET /customers/{customerId}/events', () => {
  /**
   * The customerReads function's routes over the real adapter; the table answers Queries as DynamoDB
   * would from `count` events of cust-1 (sort key order, backwards, Limit, BETWEEN).
   */
  function route(count: number) {
    const m = mockedProvisioning();
    const items = Array.from({ length: count }, (_, i) => eventItem(i + 1));
    m.dynamoMock.on(QueryCommand).callsFake((input: QueryCommandInput) => {
      const values = input.ExpressionAttributeValues ?? {};
      const below = values[':below'] as string | undefined;
      const found = items
        .filter((item) => item.pk === values[':pk'] && (below === undefined || item.sk <= below))
        .sort((a, b) => b.sk.localeCompare(a.sk));
      const limit = input.Limit ?? found.length;
      return found.length > limit
        ? { Items: found.slice(0, limit), LastEvaluatedKey: { pk: found[limit - 1]?.pk, sk: found[limit - 1]?.sk } }
        : { Items: found };
    });
    m.dynamoMock.on(GetCommand).resolves({});
    const handler = httpHandler(customerReadRoutes(readDeps({ tableName: TABLE }, { dynamo: m.dynamo })));
    const get = (query: Record<string, string> | null, customerId = 'cust-1'): Promise<APIGatewayProxyResult> =>
      handler(
        {
          ...apiEvent({ method: 'GET', resource: '/customers/{customerId}/events', pathParameters: { customerId } }),
          queryStringParameters: query,
        },
        lambdaContext(),
      );
    return { ...m, get };
  }
  const body = (response: APIGatewayProxyResult) => JSON.parse(response.body) as Record<string, unknown>;

  it('answers a page of events, newest first, and the next page by its cursor', async () => {
    // Prepare
    const { get } = route(12);

    // Act
    const first = await get({ limit: '5' });
    const second = await get({ limit: '5', cursor: String(body(first).nextCursor) });

    // Assess
    expect(first.statusCode).toBe(200);
    expect(first.headers?.['content-type']).toBe('application/json');
    expect(body(first)).toEqual({
      customerId: 'cust-1',
      events: [12, 11, 10, 9, 8].map((sequence) => anEvent(sequence)),
      nextCursor: encodeCursor(8),
    });
    expect((body(second).events as RecordedEvent[]).map((e) => e.sequence)).toEqual([7, 6, 5, 4, 3]);
  });

  it('answers the last page without nextCursor', async () => {
    // Prepare
    const { get } = route(3);

    // Act
    const response = await get(null);

    // Assess
    expect(response.statusCode).toBe(200);
    expect(body(response)).toEqual({ customerId: 'cust-1', events: [3, 2, 1].map((sequence) => anEvent(sequence)) });
  });

  it.each([
    [{ limit: '0' }, 'limit', 'limit must be a whole number from 1 to 100'],
    [{ limit: 'all' }, 'limit', 'limit must be a whole number from 1 to 100'],
    [{ cursor: 'eyJzayI6IkVWRU5UIzEifQ' }, 'cursor', 'cursor is not a cursor this API gave out'],
  ])('answers 400 problem+json naming the field for %j, without reading the table', async (query, field, detail) => {
    // Prepare
    const { get, dynamoMock } = route(3);

    // Act
    const response = await get(query);

    // Assess
    expect(response.statusCode).toBe(400);
    expect(response.headers?.['content-type']).toBe('application/problem+json');
    expect(body(response)).toMatchObject({ type: 'urn:keyplan:problem:validation-failed', field });
    expect(String(body(response).detail)).toContain(detail);
    expect(dynamoMock.calls()).toHaveLength(0);
  });

  it('answers 404 for a customer without a profile', async () => {
    // Prepare
    const { get } = route(3);

    // Act
    const response = await get(null, 'ghost');

    // Assess
    expect(response.statusCode).toBe(404);
    expect(body(response)).toMatchObject({ type: 'urn:keyplan:problem:not-found', detail: 'no customer ghost' });
  });

  it('answers 400 for a malformed customer id', async () => {
    // Prepare
    const { get } = route(3);

    // Act
    const response = await get(null, '.bad');

    // Assess
    expect(response.statusCode).toBe(400);
    expect(body(response)).toMatchObject({ field: 'customerId' });
  });
});
