import middy from '@middy/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { lambdaContext } from '../support/api-events';
import { captureOutput } from '../support/capture-output';

/**
 * observe() as a container runs it: the modules are loaded afresh for each test, in the
 * environment an on-demand Lambda container starts with, so its cold start is the test's.
 */
async function container() {
  vi.resetModules();
  const { observe } = await import('../../shared/observability');
  const { countMetric } = await import('../../shared/metrics');
  const { logger } = await import('../../shared/logger');
  return { observe, countMetric, logger };
}

const parse = (lines: string[]) => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
const emf = (lines: Record<string, unknown>[]) => lines.filter((line) => '_aws' in line);

describe('observe()', () => {
  beforeEach(() => {
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
    vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'keyplan-test');
  });
  afterEach(() => vi.unstubAllEnvs());

  it("counts a cold start once per container, on the first invocation, and flushes each invocation's metrics as it ends", async () => {
    const { observe, countMetric, logger } = await container();
    const handler = middy(async () => {
      logger.info('working');
      countMetric('Rotations');
      countMetric('Rotations');
    }).use(observe());

    const lines = parse(await captureOutput(() => handler({}, lambdaContext())));
    const again = parse(await captureOutput(() => handler({}, lambdaContext())));

    expect(emf(lines).map((line) => [line.ColdStart, line.Rotations])).toEqual([
      [1, undefined],
      [undefined, [1, 1]],
    ]);
    expect(emf(lines)[0]).toMatchObject({ service: 'keyplan-test', function_name: 'keyplan-test-register' });
    expect(emf(again).map((line) => [line.ColdStart, line.Rotations])).toEqual([[undefined, [1, 1]]]);
    expect(lines.find((line) => line.message === 'working')).toMatchObject({ cold_start: true, function_request_id: 'aws-request-1' });
    expect(again.find((line) => line.message === 'working')).toMatchObject({ cold_start: false, function_name: 'keyplan-test-register' });
  });

  it('flushes the metrics of an invocation that throws', async () => {
    const { observe, countMetric } = await container();
    const handler = middy(async () => {
      countMetric('Rollbacks');
      throw new Error('association failed');
    }).use(observe());

    let thrown: unknown;
    const lines = parse(await captureOutput(() => handler({}, lambdaContext()).catch((error: unknown) => (thrown = error))));

    expect(thrown).toMatchObject({ message: 'association failed' });
    expect(emf(lines).filter((line) => 'Rollbacks' in line)).toHaveLength(1);
  });

  it('writes no metrics line for an invocation that counted nothing', async () => {
    const { observe } = await container();
    const handler = middy(async () => 'done').use(observe());
    await captureOutput(() => handler({}, lambdaContext()));

    const lines = await captureOutput(() => handler({}, lambdaContext()));

    expect(lines).toEqual([]);
  });

  it('counts no cold start outside an on-demand container (provisioned concurrency, SnapStart, tests)', async () => {
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'provisioned-concurrency');
    const { observe, logger } = await container();
    const handler = middy(async () => logger.info('working')).use(observe());

    const lines = parse(await captureOutput(() => handler({}, lambdaContext())));

    expect(emf(lines)).toEqual([]);
    expect(lines).toEqual([expect.objectContaining({ message: 'working', cold_start: false })]);
  });
});
