import { describe, expect, it } from 'vitest';
import { batchMix, keysPerSecond, type ScaleOutPoint, scaleOutFigures, shardsLimit } from '../../bench/scale-out-figures';
import {
  AccountDirectory,
  assumedRoleCredentials,
  budgetKey,
  managementBudgetOf,
  MOTO_DEFAULT_ACCOUNT,
  signedScope,
} from '../../bench/shard-budget-proxy';
import type { Figure } from '../../bench/stats';

const byId = (figures: Figure[]) => new Map(figures.map((f) => [f.id, f]));

/** An Authorization header as SigV4 signs it (the signature itself is never checked here). */
const signed = (accessKeyId: string, region: string, service: string) =>
  `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20261130/${region}/${service}/aws4_request, ` +
  'SignedHeaders=host;x-amz-date, Signature=0123456789abcdef';

/** STS's AssumeRole answer in the query protocol's XML, as moto and AWS write it. */
const assumeRoleAnswer = (accessKeyId: string, account: string) => `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>${accessKeyId}</AccessKeyId>
      <SecretAccessKey>secret</SecretAccessKey>
      <SessionToken>token</SessionToken>
      <Expiration>2026-11-30T16:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROA0000000000000001:keyplan-acct2</AssumedRoleId>
      <Arn>arn:aws:sts::${account}:assumed-role/keyplan-shard-local/keyplan-acct2</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
</AssumeRoleResponse>`;

describe('signedScope', () => {
  it("reads the access key, Region and service from a SigV4 signature's credential scope", () => {
    expect(signedScope(signed('ASIAXYZ', 'us-west-2', 'apigateway'))).toEqual({
      accessKeyId: 'ASIAXYZ',
      region: 'us-west-2',
      service: 'apigateway',
    });
  });

  it('finds nothing in a request that is not signed with SigV4', () => {
    expect(signedScope(undefined)).toBeUndefined();
    expect(signedScope('Bearer abc')).toBeUndefined();
    expect(signedScope('AWS4-HMAC-SHA256 Credential=key/2026/us-east-1/apigateway')).toBeUndefined();
  });
});

describe('assumedRoleCredentials', () => {
  it("learns the session key an AssumeRole answer hands out and the role's account", () => {
    expect(assumedRoleCredentials(assumeRoleAnswer('ASIASESSION1', '222222222222'))).toEqual({
      accessKeyId: 'ASIASESSION1',
      account: '222222222222',
    });
  });

  it('learns nothing from another answer', () => {
    const identity = '<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:user/moto</Arn>' +
      '<Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>';

    expect(assumedRoleCredentials(identity)).toBeUndefined();
    expect(assumedRoleCredentials('<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>')).toBeUndefined();
  });
});

describe('managementBudgetOf (one API Gateway budget per account and Region)', () => {
  it("puts a key no role handed out in moto's default account", () => {
    const accounts = new AccountDirectory();

    expect(managementBudgetOf(signed('test', 'us-east-1', 'apigateway'), accounts)).toBe(`${MOTO_DEFAULT_ACCOUNT}/us-east-1`);
  });

  it('tells two Regions of one account apart, and two accounts in one Region', () => {
    const accounts = new AccountDirectory();
    accounts.learn('ASIAWEST', MOTO_DEFAULT_ACCOUNT);
    accounts.learn('ASIAACCT2', '222222222222');

    const home = managementBudgetOf(signed('test', 'us-east-1', 'apigateway'), accounts);
    const west = managementBudgetOf(signed('ASIAWEST', 'us-west-2', 'apigateway'), accounts);
    const acct2 = managementBudgetOf(signed('ASIAACCT2', 'us-east-1', 'apigateway'), accounts);

    expect(new Set([home, west, acct2]).size).toBe(3);
    expect(acct2).toBe('222222222222/us-east-1');
  });

  it("draws every session of one role on its account's one budget, renewed or from another container", () => {
    const accounts = new AccountDirectory();
    for (const answer of [assumeRoleAnswer('ASIAONE', '222222222222'), assumeRoleAnswer('ASIATWO', '222222222222')]) {
      const learned = assumedRoleCredentials(answer)!;
      accounts.learn(learned.accessKeyId, learned.account);
    }

    expect(managementBudgetOf(signed('ASIAONE', 'us-east-1', 'apigateway'), accounts)).toBe(
      managementBudgetOf(signed('ASIATWO', 'us-east-1', 'apigateway'), accounts),
    );
    expect(accounts.sessionsPerAccount()).toEqual({ '222222222222': 2 });
  });

  it('leaves every other service out of the budget', () => {
    const accounts = new AccountDirectory();

    expect(managementBudgetOf(signed('test', 'us-east-1', 'dynamodb'), accounts)).toBeUndefined();
    expect(managementBudgetOf(signed('test', 'us-east-1', 'sts'), accounts)).toBeUndefined();
    expect(managementBudgetOf(undefined, accounts)).toBeUndefined();
  });

  it('names a budget by account and Region', () => {
    expect(budgetKey({ account: '333333333333', region: 'eu-west-1' })).toBe('333333333333/eu-west-1');
  });
});

describe('keysPerSecond and shardsLimit', () => {
  it('is registrations completed per second of wall time', () => {
    expect(keysPerSecond({ active: 1000, seconds: 500 })).toBe(2);
    expect(() => keysPerSecond({ active: 10, seconds: 0 })).toThrow(RangeError);
  });

  it("is each shard's calls per second over a registration's two calls, times the shards", () => {
    expect(shardsLimit(1, 3.5)).toBe(1.75);
    expect(shardsLimit(3, 10)).toBe(15);
  });
});

describe('scaleOutFigures (figure 7)', () => {
  const point = (shards: number, seconds: number, counts: Partial<ScaleOutPoint> = {}): ScaleOutPoint => ({
    shards,
    registrations: 1000,
    seconds,
    active: 1000,
    workerCallsPerShard: 3.5,
    accountCallsPerShard: 10,
    throttled: 0,
    duplicates: 0,
    orphans: 0,
    perShard: Array.from({ length: shards }, (_, n) => ({
      id: `s${n}`,
      budget: `${n}/us-east-1`,
      placed: 1000 / shards,
      active: 1000 / shards,
      keys: 1000 / shards,
      admitted: 2000 / shards,
      throttled: 0,
      seconds,
    })),
    ...counts,
  });

  it("judges the 1-shard point against what one shard's budget allows the worker, as figure 4 does", () => {
    const rows = byId(scaleOutFigures([point(1, 580), point(2, 290), point(3, 195)]));

    expect(rows.get('scale-out.1-shard')).toMatchObject({ value: 1.724, baseline: 1.75, target: 'ratio >= 0.90 (bench)', pass: true });
  });

  it('measures every larger point against the 1-shard point of the same run, and judges it on 0.9 × shards × one shard', () => {
    const rows = byId(scaleOutFigures([point(3, 250), point(1, 580), point(2, 290)]));

    // 3.45 keys/s at 2 shards against 3.15 (0.9 × 2 × 1.75): twice the 1-shard point.
    expect(rows.get('scale-out.2-shards')).toMatchObject({ value: 3.448, baseline: 1.724, ratio: 2, target: 'value >= 3.15', pass: true });
    // 4 keys/s at 3 shards is short of 4.725.
    expect(rows.get('scale-out.3-shards')).toMatchObject({ value: 4, baseline: 1.724, target: 'value >= 4.725', pass: false });
  });

  it("reports the largest point against the accounts' whole budgets, unjudged, when the worker runs at a share", () => {
    const rows = byId(scaleOutFigures([point(1, 580), point(3, 195)]));

    expect(rows.get('scale-out.account-limit')).toMatchObject({ baseline: 15, pass: null, target: "none: the static split's cost" });
    const alone = (shards: number, seconds: number) => point(shards, seconds, { workerCallsPerShard: 10 });
    expect(byId(scaleOutFigures([alone(1, 210), alone(3, 70)])).has('scale-out.account-limit')).toBe(false);
  });

  it('adds up 429s, duplicate keys and orphan keys over every point, each to be 0', () => {
    const rows = byId(scaleOutFigures([point(1, 580), point(2, 290, { duplicates: 1, throttled: 4 }), point(3, 195, { orphans: 2 })]));

    expect(rows.get('scale-out.duplicates')).toMatchObject({ value: 1, pass: false, details: { byShards: { 1: 0, 2: 1, 3: 0 } } });
    expect(rows.get('scale-out.orphans')).toMatchObject({ value: 2, pass: false, target: 'value = 0' });
    expect(rows.get('scale-out.throttled')).toMatchObject({ value: 4, pass: false, target: 'value = 0 (bench)' });
  });

  it("keeps each point's shards in its details, with each shard's own pace", () => {
    const rows = byId(scaleOutFigures([point(1, 580), point(2, 290)]));

    expect(rows.get('scale-out.2-shards')?.details).toMatchObject({
      shards: 2,
      limitPerSecond: 3.5,
      perShard: [
        { id: 's0', placed: 500, keysPerSecond: 1.724, shareUsed: 0.985 },
        { id: 's1', placed: 500, keysPerSecond: 1.724, shareUsed: 0.985 },
      ],
    });
  });

  it('needs the 1-shard point, its baseline', () => {
    expect(() => scaleOutFigures([point(2, 290), point(3, 195)])).toThrow(RangeError);
    expect(() => scaleOutFigures([])).toThrow(RangeError);
  });
});

describe('batchMix', () => {
  it("is the mean share of a batch on its busiest shard: what a container's batch waits for", () => {
    const mix = batchMix([
      ['a', 'a', 'b', 'b'],
      ['a', 'a', 'a', 'b'],
    ]);

    expect(mix).toEqual({ batches: 2, meanRecords: 4, busiestShare: 0.625 });
  });

  it('is 1 with one shard, and counts no empty batch', () => {
    expect(batchMix([['home', 'home'], [], ['home']])).toEqual({ batches: 2, meanRecords: 1.5, busiestShare: 1 });
    expect(batchMix([])).toEqual({ batches: 0, meanRecords: 0, busiestShare: 0 });
  });
});
