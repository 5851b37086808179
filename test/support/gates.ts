import type { MiddlewareStack } from '@smithy/types';

/**
 * Deterministic interleavings against the emulator: a gate holds one chosen AWS call of one client
 * set until the test opens it (or forever: the Lambda died right there), so another operation can
 * run in between.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = { middlewareStack: MiddlewareStack<any, any> };

export interface Gate {
  /** Resolves once the chosen call has arrived and is being held (it has not reached AWS). */
  readonly reached: Promise<void>;
  /** Lets the held call through to AWS. Never called: the caller is frozen there for good. */
  open(): void;
}

let gateCount = 0;

/**
 * Holds the `occurrence`-th call of `commandName` on `client` before it is sent (above the SDK's
 * retries, so the whole call waits, not one attempt of it). Every other call passes untouched.
 */
export function gate(client: AnyClient, commandName: string, occurrence = 1): Gate {
  let seen = 0;
  let arrive: () => void = () => undefined;
  let open: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === commandName && ++seen === occurrence) {
        arrive();
        await opened;
      }
      return next(args);
    },
    { step: 'initialize', name: `gate${commandName}${++gateCount}` },
  );
  return { reached, open };
}

/**
 * Waits until `operation` is held at `at`. Fails instead of hanging when the operation ends (or
 * fails) before it gets there, or when it does not get there within `timeoutMs`.
 */
export async function heldAt(at: Gate, operation: Promise<unknown>, timeoutMs = 15_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the operation did not reach its gate within ${timeoutMs} ms`)), timeoutMs);
  });
  const endedFirst = operation.then(
    () => Promise.reject(new Error('the operation finished before it reached its gate')),
    (error: unknown) => Promise.reject(new Error('the operation failed before it reached its gate', { cause: error })),
  );
  // The operation's own outcome is still the caller's to await: this copy of it must not go unhandled.
  endedFirst.catch(() => undefined);
  try {
    await Promise.race([at.reached, endedFirst, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An error shaped as the SDK shapes AWS's answers: name and HTTP status. */
export const awsError = (name: string, httpStatusCode: number) => () =>
  Object.assign(new Error(`${name} (injected)`), { name, $metadata: { httpStatusCode } });
