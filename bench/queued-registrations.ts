// The bulk load the queue figures (throughput, scale-out) start from: customers spread over the
// tiers, queued as the async registration path queues them, a few at a time.
import { performance } from 'node:perf_hooks';
import type { Config } from '../shared/config';
import { enqueueRegistration } from '../shared/provisioning/enqueue-registration';
import { createEnqueueDeps } from '../shared/wiring/compose';
import { progress } from './child';
import { round } from './stats';

const TIERS = ['free', 'basic', 'pro'] as const;

/** Runs `work` over `items`, at most `concurrency` at a time. */
export async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/**
 * `registrations` customers named `<label>-<run>-<n>`, queued (each must be `queued`, none a
 * replay): the customers, and how long the queueing took.
 */
export async function queueRegistrations(
  config: Config,
  options: { label: string; run: string; registrations: number },
): Promise<{ customers: { customerId: string; email: string; tier: string }[]; enqueueSeconds: number }> {
  const { label, run, registrations } = options;
  const customers = Array.from({ length: registrations }, (_, n) => {
    const customerId = `${label}-${run}-${n}`;
    return { customerId, email: `${customerId}@${run}.example.com`, tier: TIERS[n % TIERS.length] ?? 'free' };
  });
  const enqueueStarted = performance.now();
  const enqueueDeps = createEnqueueDeps(config);
  await inParallel(customers, 8, async (request) => {
    const { outcome } = await enqueueRegistration({ registrationId: request.customerId, request, now: new Date() }, enqueueDeps);
    if (outcome !== 'queued') throw new Error(`${request.customerId} was ${outcome}`);
  });
  const enqueueSeconds = (performance.now() - enqueueStarted) / 1000;
  progress(`${registrations} registrations queued in ${round(enqueueSeconds, 1)} s`);
  return { customers, enqueueSeconds };
}
