import {
  type APIGatewayClient,
  GetApiKeysCommand,
  GetUsagePlansCommand,
} from '@aws-sdk/client-api-gateway';
import { type DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { MiddlewareStack } from '@smithy/types';

/** What the emulator saw, read back for assertions. */

export interface SentEmail {
  source: string;
  subject: string;
  body: string;
  destinations: { ToAddresses?: string[] };
}

/** moto keeps every sent SES message; /moto-api/data.json lists them as ses.Message. */
export async function sentEmailsTo(endpoint: string, address: string): Promise<SentEmail[]> {
  const response = await fetch(`${endpoint}/moto-api/data.json`);
  const data = (await response.json()) as { ses?: { Message?: SentEmail[] } };
  return (data.ses?.Message ?? []).filter((m) => m.destinations.ToAddresses?.includes(address));
}

export async function keysNamed(apiGateway: APIGatewayClient, name: string) {
  const page = await apiGateway.send(new GetApiKeysCommand({ nameQuery: name, includeValues: true, limit: 500 }));
  return (page.items ?? []).filter((key) => key.name === name);
}

export async function plansOfKey(apiGateway: APIGatewayClient, keyId: string): Promise<string[]> {
  const page = await apiGateway.send(new GetUsagePlansCommand({ keyId, limit: 500 }));
  return (page.items ?? []).map((plan) => plan.id ?? '');
}

export async function itemsOfCustomer(dynamo: DynamoDBDocumentClient, tableName: string, customerId: string) {
  const page = await dynamo.send(
    new QueryCommand({
      TableName: tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `CUSTOMER#${customerId}` },
    }),
  );
  return page.Items ?? [];
}

/** Test-only: the whole table, to prove no item anywhere holds a key value. */
export async function wholeTable(dynamo: DynamoDBDocumentClient, tableName: string) {
  const page = await dynamo.send(new ScanCommand({ TableName: tableName }));
  return page.Items ?? [];
}

export class SimulatedCrash extends Error {
  override name = 'SimulatedCrash';
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = { middlewareStack: MiddlewareStack<any, any> };

/**
 * Lets the named command reach AWS and then "kills the process": the call's effect is real, the
 * caller never hears of it. `occurrence` picks which call of that command dies.
 */
export function crashAfter(client: AnyClient, commandName: string, occurrence = 1): void {
  let seen = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const output = await next(args);
      if (context.commandName === commandName && ++seen === occurrence) throw new SimulatedCrash(commandName);
      return output;
    },
    { step: 'initialize', name: `crashAfter${commandName}` },
  );
}

/**
 * "Kills the process" just before the named command is sent: whatever ran before it took effect,
 * nothing after it does. Models a crash between a step whose own errors the caller would catch
 * (the email) and the next one.
 */
export function crashBefore(client: AnyClient, commandName: string, occurrence = 1): void {
  let seen = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === commandName && ++seen === occurrence) throw new SimulatedCrash(commandName);
      return next(args);
    },
    { step: 'initialize', name: `crashBefore${commandName}` },
  );
}

/**
 * Answers the named command with `error` for its first `times` attempts, below the SDK's retry
 * layer, so the SDK sees (and retries) them as if AWS had answered so.
 */
export function failAttempts(client: AnyClient, commandName: string, error: () => Error, times = Infinity) {
  const attempts = { failed: 0, total: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== commandName) return next(args);
      attempts.total++;
      if (attempts.failed < times) {
        attempts.failed++;
        throw error();
      }
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: `fail${commandName}` },
  );
  return attempts;
}

/** Answers every command that `shouldFail` picks with `error`, below the SDK's retry layer. */
export function failWhile(client: AnyClient, shouldFail: (commandName: string) => boolean, error: () => Error) {
  const counts = { failed: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (shouldFail(String(context.commandName))) {
        counts.failed++;
        throw error();
      }
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'failWhile' },
  );
  return counts;
}

/** A queue and its DLQ of the test's own, redriving after 5 receives as the deployed queue does. */
export async function createQueuePair(
  sqs: SQSClient,
  name: string,
  visibilityTimeoutSeconds = 30,
): Promise<{ queueUrl: string; dlqUrl: string }> {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqUrl = String(dlq.QueueUrl);
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes?.QueueArn, maxReceiveCount: 5 }),
      },
    }),
  );
  return { queueUrl: String(queue.QueueUrl), dlqUrl };
}

/** Messages in the queue, visible or in flight. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
