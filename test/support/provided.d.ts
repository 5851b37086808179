import type { LocalStack } from '../../infra/local/bootstrap';

// What test/support/global-setup.ts provides to the integration tests through inject().
declare module 'vitest' {
  export interface ProvidedContext {
    localStack: LocalStack;
  }
}
