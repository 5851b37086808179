import type { MiddlewareStack } from '@smithy/types';
import type { AwsClients } from '../shared/aws/clients';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = { middlewareStack: MiddlewareStack<any, any> };

/** `DynamoDBClient` -> `DynamoDB`, `TransactWriteItemsCommand` -> `TransactWriteItems`. */
const shortName = (name: unknown, suffix: string) => String(name ?? '?').replace(new RegExp(`${suffix}$`), '');

/**
 * Counts AWS calls at the SDK's middleware level, per attempt (retries count), per
 * `Service.Operation`: below the retry layer, where keyplan's own throttle counter and management
 * budget sit, so every request that would reach AWS is seen once.
 */
export class CallCounter {
  #counts = new Map<string, number>();

  /** Adds the counter to every client of `createAwsClients()` (the document client shares DynamoDB's stack). */
  attachAll(clients: AwsClients): this {
    for (const client of [clients.apiGateway, clients.apiGatewaySingleAttempt, clients.dynamo, clients.ses, clients.sqs]) {
      this.attach(client);
    }
    return this;
  }

  attach(client: AnyClient): this {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        // A Query or Scan of an index is told apart from one of the table: `DynamoDB.Query[due]`.
        const index = (args.input as { IndexName?: unknown } | undefined)?.IndexName;
        const name = `${shortName(context.clientName, 'Client')}.${shortName(context.commandName, 'Command')}${index ? `[${String(index)}]` : ''}`;
        this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'benchCountCalls' },
    );
    return this;
  }

  get total(): number {
    let total = 0;
    for (const count of this.#counts.values()) total += count;
    return total;
  }

  /** Calls per `Service.Operation`, sorted by name. */
  byOperation(): Record<string, number> {
    return Object.fromEntries([...this.#counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Calls of the named service (`APIGateway`, `DynamoDB`, `SES`, `SQS`). */
  ofService(service: string): number {
    let total = 0;
    for (const [name, count] of this.#counts) if (name.startsWith(`${service}.`)) total += count;
    return total;
  }

  /** Calls of the operation, on the table and on any index (`DynamoDB.Query` counts `DynamoDB.Query[due]` too). */
  count(operation: string): number {
    let total = 0;
    for (const [name, count] of this.#counts) if (name === operation || name.startsWith(`${operation}[`)) total += count;
    return total;
  }

  reset(): void {
    this.#counts.clear();
  }

  /** Counts what `work` calls, alone: the counter starts from zero. */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; total: number; byOperation: Record<string, number> }> {
    this.reset();
    const result = await work();
    return { result, total: this.total, byOperation: this.byOperation() };
  }
}
