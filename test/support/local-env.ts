import { inject } from 'vitest';
import { type LocalStack, functionEnvironment } from '../../infra/local/bootstrap';

/**
 * The emulator stack of this test run, with process.env pointed at it the way a deployed
 * function's environment would be.
 *
 * Handler and config modules read process.env once, when first imported, so call this before
 * importing them, and import them dynamically:
 *
 *   const stack = useLocalStack();
 *   const { handler } = await import('../../functions/register/handler');
 */
export function useLocalStack(): LocalStack {
  const stack = inject('localStack');
  Object.assign(process.env, functionEnvironment(stack));
  return stack;
}
