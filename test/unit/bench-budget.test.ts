import { describe, expect, it } from 'vitest';
import { ManagementCallLog, managementBudgetRule, RefusingBucket } from '../../bench/budget-proxy';
import type { AwsCall } from '../support/fault-proxy';

describe('RefusingBucket (the account management budget of figure 4)', () => {
  it('admits a burst at once, then refuses until tokens come back', () => {
    let now = 0;
    const bucket = new RefusingBucket(10, 40, () => now);

    const first = Array.from({ length: 41 }, () => bucket.tryTake());

    expect(first.filter(Boolean)).toHaveLength(40);
    expect(first[40]).toBe(false);
    now += 99;
    expect(bucket.tryTake()).toBe(false);
    now += 1;
    expect(bucket.tryTake()).toBe(true);
    expect({ admitted: bucket.admitted, refused: bucket.refused }).toEqual({ admitted: 41, refused: 2 });
  });

  it('admits the rate on average under constant pressure, and never more than the burst after a pause', () => {
    let now = 0;
    const bucket = new RefusingBucket(10, 40, () => now);
    // A caller trying every millisecond for 10 s: the burst, then 10 per second (the 100th of
    // those is due at 10,000 ms, just after the last try).
    for (; now < 10_000; now++) bucket.tryTake();
    expect(bucket.admitted).toBe(40 + 99);

    now += 60_000;
    let admittedAfterPause = 0;
    while (bucket.tryTake()) admittedAfterPause++;
    expect(admittedAfterPause).toBe(40);
  });
});

describe('managementBudgetRule', () => {
  it('throttles API Gateway calls that find no token, and only those', () => {
    let now = 0;
    const bucket = new RefusingBucket(1, 1, () => now);
    const rule = managementBudgetRule(bucket);
    const call = { service: 'apigateway', operation: 'CreateApiKey', method: 'POST', path: '/apikeys', attempt: 1 };
    const hits = rule.operation as (call: AwsCall) => boolean;

    expect(rule).toMatchObject({ service: 'apigateway', fault: { kind: 'throttle' } });
    expect(hits).toBeTypeOf('function');
    expect(hits(call)).toBe(false);
    expect(hits(call)).toBe(true);
    now += 1_000;
    expect(hits(call)).toBe(false);
  });
});

describe('ManagementCallLog', () => {
  it('learns of every call the rule sees, admitted or refused, with its time', () => {
    let now = 0;
    const bucket = new RefusingBucket(1, 1, () => now);
    const log = new ManagementCallLog();
    const hits = managementBudgetRule(bucket, log).operation as (call: AwsCall) => boolean;
    const call = { service: 'apigateway', operation: 'CreateUsagePlanKey', method: 'POST', path: '/usageplans/p/keys', attempt: 1 };

    hits(call);
    hits(call);
    now = 1_000;
    hits(call);

    expect(log.admitted).toHaveLength(2);
    expect(log.refused).toHaveLength(1);
    expect(log.all).toHaveLength(3);
    expect(log.all).toEqual([...log.all].sort((a, b) => a - b));
  });
});
