// Figure 8 (issue 17): the console's pages over a seeded account, served by the console as
// `keyplan console` serves it, next to the same reads called bare (the read model's use cases,
// no HTTP, no HTML), sample by sample in turn.
import { performance } from 'node:perf_hooks';
import { startConsole } from '../cli/console/server';
import { awsServices } from '../cli/services';
import { dynamoClient } from '../shared/aws/clients';
import { ConsoleTable } from '../shared/aws/console-table';
import { loadConfig } from '../shared/config';
import { getCustomerPage } from '../shared/console/customer-page';
import { countKeys } from '../shared/console/key-counts';
import { getOverview } from '../shared/console/overview';
import { childMain, progress } from './child';

export interface ConsoleBenchInput {
  /** The seeded stack's function environment (bench/scale.ts seedScale). */
  env: Record<string, string>;
  samples: number;
  warmup: number;
  /** A seeded customer whose page is measured. */
  customerId: string;
}

export interface ConsoleBenchResult {
  /** ms per request, the body read whole. */
  overview: number[];
  customer: number[];
  /** ms per call of the use case alone, over the same deps. */
  overviewReads: number[];
  customerReads: number[];
  /** The first overview after the console started: it waits for the key counts and the failures' scan. */
  firstOverviewMs: number;
  /**
   * ms per key pass (countKeys over every key partition of the due index), uncached: what the
   * console does behind the page at most every 30 s, and what a page would wait for without it.
   */
  keyPass: number[];
  /** The keys the overview's gauge showed, and its page size. */
  gaugeKeys: number;
  overviewBytes: number;
  customerBytes: number;
}

async function measure(input: ConsoleBenchInput): Promise<ConsoleBenchResult> {
  // The SDK's clients take their endpoint and credentials from the environment.
  Object.assign(process.env, input.env);
  const config = loadConfig(process.env);
  const services = awsServices(config);
  const running = await startConsole({ services, config, stack: 'the bench' });
  const timed = async <T>(work: () => Promise<T>): Promise<[number, T]> => {
    const started = performance.now();
    const value = await work();
    return [performance.now() - started, value];
  };
  const get = (path: string) =>
    timed(async () => {
      const response = await fetch(`${running.origin}${path}${path.includes('?') ? '&' : '?'}token=${running.token}`);
      if (response.status !== 200) throw new Error(`GET ${path} answered ${response.status}`);
      return response.text();
    });
  const reads = services.console();
  const customerPath = `/customers/${encodeURIComponent(input.customerId)}`;
  try {
    const [firstOverviewMs, first] = await get('/');
    const gaugeKeys = Number(/data-testid="key-gauge"[^>]*data-used="(\d+)"/.exec(first)?.[1] ?? NaN);
    const result: ConsoleBenchResult = {
      overview: [],
      customer: [],
      overviewReads: [],
      customerReads: [],
      firstOverviewMs,
      keyPass: [],
      gaugeKeys,
      overviewBytes: first.length,
      customerBytes: 0,
    };
    for (let i = 0; i < input.warmup + input.samples; i++) {
      // In turn, so a busy moment of the machine or the emulator slows both sides.
      const [overviewMs] = await get('/');
      const [overviewReadsMs] = await timed(() => getOverview(new Date(), reads));
      const [customerMs, page] = await get(customerPath);
      const [customerReadsMs] = await timed(() => getCustomerPage(input.customerId, new Date(), reads));
      if (i < input.warmup) continue;
      result.overview.push(overviewMs);
      result.overviewReads.push(overviewReadsMs);
      result.customer.push(customerMs);
      result.customerReads.push(customerReadsMs);
      result.customerBytes = page.length;
      if ((i + 1) % 10 === 0) progress(`console: ${i + 1 - input.warmup}/${input.samples} samples`);
    }
    const table = new ConsoleTable({ client: dynamoClient(), tableName: config.tableName });
    for (let i = 0; i < 5; i++) result.keyPass.push((await timed(() => countKeys(new Date(), table, config.shards[0]!.id)))[0]);
    return result;
  } finally {
    await running.close();
    services.close();
  }
}

await childMain(measure);
