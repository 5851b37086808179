import fc from 'fast-check';
import { describe, it } from 'vitest';
import { concurrencyProperty, modelParameters } from '../support/in-memory-model';

describe('every operation on a customer, together (DESIGN §7)', () => {
  it('keeps the invariants over 1,000 interleavings with crashes and failures injected', async () => {
    await fc.assert(concurrencyProperty(), modelParameters(1_000));
  }, 120_000);
});
