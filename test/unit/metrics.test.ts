import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../../shared/metrics';

/** Metrics over `env` (enabled unless it says otherwise), whose EMF lines are parsed as they are written. */
function metricsOver(env: NodeJS.ProcessEnv = {}) {
  const lines: Record<string, unknown>[] = [];
  const metrics = createMetrics(
    { POWERTOOLS_METRICS_DISABLED: 'false', ...env },
    (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  );
  return { metrics, lines };
}

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
}
const definitionsOf = (line: Record<string, unknown>) => (line as unknown as Emf)._aws.CloudWatchMetrics[0]!.Metrics;

describe('the metrics', () => {
  afterEach(() => vi.useRealTimers());

  it('flush what was counted as one EMF line: namespace, the service dimension, a Count per metric', () => {
    vi.useFakeTimers({ now: new Date('2026-12-01T10:00:00.000Z') });
    const { metrics, lines } = metricsOver({ POWERTOOLS_SERVICE_NAME: 'keyplan-dev', POWERTOOLS_METRICS_NAMESPACE: 'keyplan' });

    metrics.count('KeysProvisioned', 1);
    metrics.count('Throttles', 3);
    metrics.flush();

    expect(lines).toEqual([
      {
        _aws: {
          Timestamp: Date.parse('2026-12-01T10:00:00.000Z'),
          CloudWatchMetrics: [
            {
              Namespace: 'keyplan',
              Dimensions: [['service']],
              Metrics: [
                { Name: 'KeysProvisioned', Unit: 'Count' },
                { Name: 'Throttles', Unit: 'Count' },
              ],
            },
          ],
        },
        service: 'keyplan-dev',
        KeysProvisioned: 1,
        Throttles: 3,
      },
    ]);
  });

  it('list every value of a metric counted more than once, so Sum, Maximum and SampleCount all hold', () => {
    const { metrics, lines } = metricsOver();

    metrics.count('Throttles', 1);
    metrics.count('AccountKeyCount', 7);
    metrics.count('Throttles', 1);
    metrics.flush();

    expect(definitionsOf(lines[0]!)).toEqual([
      { Name: 'Throttles', Unit: 'Count' },
      { Name: 'AccountKeyCount', Unit: 'Count' },
    ]);
    expect(lines[0]).toMatchObject({ Throttles: [1, 1], AccountKeyCount: 7 });
  });

  it('write nothing for an invocation that counted nothing, and forget what a flush wrote', () => {
    const { metrics, lines } = metricsOver();

    metrics.flush();
    metrics.count('Rotations', 1);
    metrics.flush();
    metrics.flush();

    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ Rotations: 1 });
  });

  it('split what CloudWatch would refuse: at most 100 metrics a line, and 100 values a metric', () => {
    const { metrics, lines } = metricsOver();

    for (let i = 0; i < 150; i++) metrics.count(`Metric${i}`, i);
    for (let i = 0; i < 150; i++) metrics.count('Metric0', 1);
    metrics.flush();

    expect(lines.map((line) => definitionsOf(line).length)).toEqual([100, 51]);
    expect(lines[0]!.Metric0).toHaveLength(100);
    expect(lines[1]!.Metric0).toHaveLength(51);
    expect(lines[1]!.Metric149).toBe(149);
    const names = lines.flatMap((line) => definitionsOf(line).map((d) => d.Name));
    expect(new Set(names).size).toBe(150);
  });

  it('count a cold start on a line of its own, with the function name as a second dimension', () => {
    const { metrics, lines } = metricsOver({ POWERTOOLS_SERVICE_NAME: 'keyplan-dev' });

    metrics.coldStart('keyplan-dev-register');

    expect(lines).toEqual([
      {
        _aws: {
          Timestamp: expect.any(Number),
          CloudWatchMetrics: [
            { Namespace: 'keyplan', Dimensions: [['service', 'function_name']], Metrics: [{ Name: 'ColdStart', Unit: 'Count' }] },
          ],
        },
        service: 'keyplan-dev',
        function_name: 'keyplan-dev-register',
        ColdStart: 1,
      },
    ]);
  });

  it('leave out a value CloudWatch would drop the line for', () => {
    const { metrics, lines } = metricsOver();

    metrics.count('Rotations', Number.NaN);
    metrics.count('Rotations', Number.POSITIVE_INFINITY);
    metrics.flush();

    expect(lines).toEqual([]);
  });

  it.each([
    [{ POWERTOOLS_METRICS_DISABLED: 'true' }],
    [{ POWERTOOLS_METRICS_DISABLED: '1' }],
    [{ POWERTOOLS_METRICS_DISABLED: undefined, POWERTOOLS_DEV: 'true' }],
  ])('write nothing when disabled by %j', (env) => {
    const { metrics, lines } = metricsOver(env);

    metrics.count('Rotations', 1);
    metrics.coldStart('keyplan-dev-register');
    metrics.flush();

    expect(lines).toEqual([]);
  });
});
