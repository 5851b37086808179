import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkInvariants,
  expectEveryInterleavingSafe,
  FOREIGN_PLAN,
  prepareWorld,
  quiesce,
  runScenario,
  type Scenario,
} from '../support/in-memory-model';

/*
 * The acceptance of DESIGN §7: registrations (repeated ids), rotations (schedule time behind and
 * ahead of the clock), retirement, tier changes, revocation and re-activation, reconcile and the
 * sweep, run at once over in-memory fakes under fast-check's scheduler, with crashes and AWS
 * failures injected between steps. A failure prints the seed and path to replay it with
 * KEYPLAN_MODEL_SEED=<seed> KEYPLAN_MODEL_PATH=<path>; `npm run soak` runs 100,000.
 */

/** Two registered customers on different tiers, c1 and c2, and nothing running. */
const twoCustomers: Scenario = {
  customers: [
    { id: 'c1', start: 'active', tier: 'free' },
    { id: 'c2', start: 'rotated', tier: 'pro' },
  ],
  batches: [],
};

async function aSettledWorld(scenario: Scenario = twoCustomers) {
  const { world, seeded } = await prepareWorld(scenario);
  const unsettled = await quiesce(world);
  const keyOf = (customerId: string) => Object.keys(world.profiles.get(customerId)?.keys ?? {})[0] ?? '';
  return { world, seeded, unsettled, check: () => checkInvariants(world, scenario, seeded), keyOf };
}

describe('every operation on a customer, together (DESIGN §7)', () => {
  it('keeps the invariants over 1,000 interleavings with crashes and failures injected', async () => {
    await expectEveryInterleavingSafe(1_000);
  }, 120_000);

  /** Counterexamples the model found, kept as cases: each must hold in every order of its calls. */
  const found: { name: string; scenario: Scenario }[] = [
    {
      // Stages that share an account and a key name prefix name a registration's key alike.
      name: "a resumed registration does not adopt another stage's key of the same name",
      scenario: {
        customers: [{ id: 'c1', start: 'none', tier: 'free' }],
        batches: [
          [{ kind: 'register', customer: 0, registration: 0, otherPayload: false, reactivate: false, mode: 'sync', fault: { method: 'registrations.claim', call: 1, kind: 'crash-after' } }],
        ],
      },
    },
    {
      name: 'a resumed rotation does not delete the successor an earlier attempt emailed',
      scenario: {
        customers: [{ id: 'c1', start: 'active', tier: 'free' }],
        batches: [
          [{ kind: 'rotate-customer', customer: 0, graceDays: undefined, fault: { method: 'mailer.send', call: 1, kind: 'crash-after' } }],
          [{ kind: 'sweep', fault: { method: 'gateway.addKeyToPlan', call: 1, kind: 'refuse' } }],
        ],
      },
    },
    {
      name: 'a resumed registration does not roll back the key an earlier attempt emailed',
      scenario: {
        customers: [{ id: 'c1', start: 'none', tier: 'free' }],
        batches: [
          [{ kind: 'register', customer: 0, registration: 1, otherPayload: false, reactivate: false, mode: 'sync', fault: { method: 'mailer.send', call: 1, kind: 'crash-after' } }],
          [{ kind: 'sweep', fault: { method: 'gateway.addKeyToPlan', call: 1, kind: 'refuse' } }],
        ],
      },
    },
  ];

  it.each(found)('$name', async ({ scenario }) => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (scheduler) => {
        expect((await runScenario(scenario, scheduler)).violations).toEqual([]);
      }),
      { numRuns: 10 },
    );
  });
});

describe('the invariants the model checks', () => {
  it('hold for customers registered, rotated and left alone', async () => {
    const { unsettled, check } = await aSettledWorld();

    expect(unsettled).toEqual([]);
    expect(check()).toEqual([]);
  });

  it('catch a customer whose only key was disabled and one whose key sits in a second plan', async () => {
    const { world, check, keyOf } = await aSettledWorld();
    await world.gateway.disableKey(keyOf('c1'));
    world.plans.get(FOREIGN_PLAN)?.add(world.profiles.get('c2')?.emailedKeyId ?? '');

    expect(check()).toEqual(
      expect.arrayContaining([
        'c1 is ACTIVE but has no enabled key',
        expect.stringMatching(/^c2 \(ACTIVE, tier pro\): enabled key \w+ is in \[plan-pro, plan-other-stage\]/),
      ]),
    );
  });

  it('catch a deleted key the customer was emailed last, and a record left pointing at it', async () => {
    const { world, check } = await aSettledWorld();
    await world.gateway.deleteKey(world.profiles.get('c2')?.emailedKeyId ?? '');

    expect(check()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^c2 \(ACTIVE\): the key most recently emailed \(\w+, the last of 2 key emails\) no longer exists$/),
        expect.stringMatching(/record of \w+ \(c2\) points to a key that is gone$/),
      ]),
    );
  });

  it('catch a revoked customer with an enabled key', async () => {
    const { world, check } = await aSettledWorld();
    world.profiles.get('c1')!.status = 'REVOKED';

    expect(check()).toContainEqual(expect.stringMatching(/^c1 is REVOKED but its key \w+ is enabled$/));
  });

  it('catch a managed key without a record, and a touched key of another stage or tool', async () => {
    const { world, seeded, check } = await aSettledWorld();
    const stray = await world.gateway.ensureKey(
      {
        name: `kp-model-${'0'.repeat(32)}`,
        customerId: 'c1',
        description: '',
        tags: { 'keyplan:managed': 'true', 'keyplan:stage': 'model', 'keyplan:customer': 'c1' },
      },
      { lookupFirst: false },
    );
    await world.gateway.removeKeyFromPlan(FOREIGN_PLAN, seeded.foreignStage.id);

    expect(check()).toEqual(
      expect.arrayContaining([
        `after the reconcile, managed key ${stray.id} of c1 (enabled) has no record`,
        `foreignStage key ${seeded.foreignStage.id} was touched`,
      ]),
    );
  });
});
