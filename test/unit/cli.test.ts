import { singleShard } from '../../shared/core/shards';
import { oneShard } from '../../shared/core/shards';
import type { KeyGateway } from '../../shared/core/ports';
import { SendEmailCommand } from '@aws-sdk/client-ses';
import { describe, expect, it, vi } from 'vitest';
import { type CliIo, COMMANDS, runKeyplan } from '../../cli/run-keyplan';
import type { Services } from '../../cli/services';
import type { TierChangeDeps } from '../../shared/customers/change-tier';
import type { CustomerChange, CustomerLedger, CustomerRecord } from '../../shared/core/customer-record';
import type { RevocationDeps } from '../../shared/customers/revoke-customer';
import { UsageUnavailableError } from '../../shared/errors';
import type { ProvisioningMessage } from '../../shared/provisioning/ports';
import type { RegistrationStore } from '../../shared/core/ports';
import type { Customer } from '../../shared/core/registration';
import type { CustomerKey } from '../../shared/core/model';
import type { ListedKey, ReconcileDeps } from '../../shared/reconcile/ports';
import type { RotationDeps } from '../../shared/rotation/rotate-key';
import type { UsageDeps } from '../../shared/usage/get-customer-usage';
import { awsError, KEY_VALUE, mockedProvisioning, PLAN_FREE, PLAN_PRO } from '../support/provisioning-fakes';

const DEPLOYED_ENV = {
  TABLE_NAME: 'keyplan-prod',
  TIER_MAP: JSON.stringify({ free: PLAN_FREE, pro: PLAN_PRO }),
  SENDER_EMAIL: 'keys@example.com',
  QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/keyplan-prod-queue',
  AWS_REGION: 'eu-west-1',
  GRACE_DAYS: '7',
};
const NOW = new Date('2026-04-01T10:00:00.000Z');

/** `keyplan ARGV` with the given fake dependencies; what it printed, where, and its exit code. */
async function keyplan(argv: string[], fakes: Partial<Services> = {}) {
  let stdout = '';
  let stderr = '';
  const close = vi.fn();
  const servicesMade = vi.fn();
  const io: CliIo = {
    argv,
    env: { ...DEPLOYED_ENV },
    cwd: '/',
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += String(text)), isTTY: false } as unknown as CliIo['stderr'],
    services: () => {
      servicesMade();
      return { ...fakes, close } as Services;
    },
    now: () => NOW,
  };
  const code = await runKeyplan(io);
  return { code, stdout, stderr, close, servicesMade, json: () => JSON.parse(stdout) as Record<string, unknown> };
}

const aCustomer = (overrides: Partial<Customer> = {}): Customer => ({
  customerId: 'cust-1',
  email: 'ada@example.com',
  tier: 'free',
  status: 'ACTIVE',
  registrationId: 'cust-1',
  createdAt: '2026-03-01T00:00:00.000Z',
  updatedAt: '2026-03-01T00:00:00.000Z',
  keys: [],
  ...overrides,
});

const aKey = (overrides: Partial<CustomerKey> = {}): CustomerKey => ({
  customerId: 'cust-1',
  keyId: 'key-1',
  state: 'ACTIVE',
  usagePlanId: PLAN_FREE,
  tier: 'free',
  fingerprint: 'ab12cd34',
  registrationId: 'cust-1',
  createdAt: '2026-03-01T00:00:00.000Z',
  generation: 1,
  ...overrides,
});


/** cust-1 with key-1 ACTIVE (key-0 DISABLED), on free; every commit is kept. */
function ledger(options: { busyForSeconds?: number } = {}) {
  const commits: CustomerChange[] = [];
  const customer: CustomerRecord = {
    customerId: 'cust-1',
    email: 'ada@example.com',
    tier: 'free',
    status: 'ACTIVE',
    registrationId: 'cust-1',
    keys: { 'key-1': 'ACTIVE', 'key-0': 'DISABLED' },
    version: 3,
  };
  const fake: CustomerLedger = {
    acquire: async (customerId) => {
      if (customerId !== 'cust-1') return { kind: 'not-found' };
      if (options.busyForSeconds) {
        const until = NOW.getTime() + options.busyForSeconds * 1000;
        return { kind: 'busy', holder: { owner: 'other', operation: 'change-tier', until, mustFinish: true } };
      }
      return { kind: 'acquired', customer };
    },
    renew: async () => true,
    commit: async (_customerId, _owner, change) => void commits.push(change),
    release: async () => undefined,
    abandon: async () => undefined,
    place: async () => 'placed',
    findInterrupted: async () => [],
  };
  return { fake, commits, clock: () => NOW };
}

describe('keyplan (dispatch, help, output contract)', () => {
  it('without a command prints the overview on stderr and exits 2', async () => {
    // Act
    const result = await keyplan([]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^Usage: keyplan COMMAND/);
  });

  it.each([['--help'], ['-h'], ['help']])('%s lists every command and the exit codes on stdout, exit 0', async (flag) => {
    // Act
    const result = await keyplan([flag]);

    // Assess
    expect(result.code).toBe(0);
    for (const command of COMMANDS) expect(result.stdout).toMatch(new RegExp(`\\n  ${command.name} +\\S`));
    expect(result.stdout).toContain('Exit codes: 0 done; 1 the operation failed or found problems; 2 usage');
    expect(result.servicesMade).not.toHaveBeenCalled();
  });

  it.each(COMMANDS.map((command) => [command.name]))('%s --help shows its usage, the global options and exit codes', async (name) => {
    // Act
    const result = await keyplan([name, '--help']);
    const viaHelp = await keyplan(['help', name]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Usage: keyplan ${name}`));
    expect(result.stdout).toContain('--stage NAME');
    expect(result.stdout).toContain('Exit codes:');
    expect(viaHelp.stdout).toBe(result.stdout);
    expect(result.servicesMade).not.toHaveBeenCalled();
  });

  it.each([
    [['frobnicate'], /^keyplan: unknown command "frobnicate"; the commands are: provision, status/],
    [['status', '--bogus'], /^keyplan status: Unknown option '--bogus'/],
    [['status'], /^keyplan status: no CUSTOMER_ID or --registration ID given/],
    [['status', 'c-1', '--registration', 'r-1'], /not both/],
    [['rotate'], /^keyplan rotate: no CUSTOMER_ID given/],
    [['rotate', 'c-1', 'c-2'], /unexpected argument "c-2"/],
    [['rotate', 'c-1', '--grace-days=-1'], /--grace-days must be a whole number from 0 to 365, got "-1"/],
    [['rotate', 'c-1', '--grace-days', '1.5'], /--grace-days must be a whole number/],
    [['change-tier', 'c-1'], /no TIER given/],
    [['provision', 'c-1', '--tier', 'free'], /--email is required/],
    [['provision', 'c-1', '--email', 'a@example.com', '--tier', 'free', '--reactivate'], /--reactivate needs a new --idempotency-key/],
    [['revoke', 'c-1'], /revoke disables every key of c-1 at once: add --yes to confirm/],
    [['reconcile', 'extra'], /unexpected argument "extra"/],
    [['import'], /no FILE given/],
    [['status', 'c 1'], /^keyplan status: customerId may contain only letters, digits and \. _ : -(?:\n|$)/],
    [['status', '--registration', 'r'.repeat(129)], /^keyplan status: registration must be at most 128 characters(?:\n|$)/],
    [['revoke', '.c-1', '--yes'], /^keyplan revoke: customerId must start with a letter or digit(?:\n|$)/],
    [['reconcile', '--stage', 'a/b'], /--stage must be letters, digits and -/],
  ])('exits 2 for %j with one line and no AWS call', async (argv, message) => {
    // Act
    const result = await keyplan(argv);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.split('\n')[0]).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).toBe('');
    expect(result.servicesMade).not.toHaveBeenCalled();
  });

  it('points a usage error to the command help', async () => {
    // Act
    const result = await keyplan(['rotate']);

    // Assess
    expect(result.stderr).toBe('keyplan rotate: no CUSTOMER_ID given\nRun `keyplan rotate --help` for usage.\n');
  });

  it('with --json, a failure is also the one JSON object on stdout', async () => {
    // Act
    const result = await keyplan(['rotate', '--json', 'c-1', '--grace-days', 'x']);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.json()).toEqual({
      error: { exitCode: 2, code: 'usage', message: '--grace-days must be a whole number from 0 to 365, got "x"' },
    });
  });

  it('says which stack it uses on stderr, prints one JSON object on stdout, and closes its clients', async () => {
    // Prepare
    const store = { getCustomer: async () => aCustomer({ keys: [aKey()] }) } as Partial<RegistrationStore> as RegistrationStore;

    // Act
    const result = await keyplan(['status', 'cust-1', '--json'], { provisioning: () => ({ store }) as ReturnType<Services['provisioning']> });

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('keyplan status: using the environment: table keyplan-prod in eu-west-1\n');
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.json()).toEqual({
      customerId: 'cust-1',
      email: 'ada@example.com',
      tier: 'free',
      status: 'ACTIVE',
      keys: [{ keyId: 'key-1', state: 'ACTIVE', fingerprint: 'ab12cd34', createdAt: '2026-03-01T00:00:00.000Z' }],
    });
    expect(result.close).toHaveBeenCalledOnce();
  });

  it('shows an unexpected error as one line, exits 1, and still closes its clients', async () => {
    // Prepare
    const store = {
      getCustomer: async () => {
        throw new Error('boom');
      },
    } as Partial<RegistrationStore> as RegistrationStore;

    // Act
    const result = await keyplan(['status', 'cust-1'], { provisioning: () => ({ store }) as ReturnType<Services['provisioning']> });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[1]).toBe('keyplan status: unexpected error: Error: boom (--verbose logs the details)');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.close).toHaveBeenCalledOnce();
  });
});

describe('keyplan provision', () => {
  const provision = (extra: string[], m = mockedProvisioning(), enqueue?: Services['enqueue']) =>
    keyplan(['provision', 'cust-1', '--email', 'ada@example.com', '--tier', 'free', '--json', ...extra], {
      provisioning: () => m.deps,
      ...(enqueue ? { enqueue } : {}),
    });

  it('provisions under the customer id as idempotency key and prints the registration, never the key value', async () => {
    // Prepare
    const m = mockedProvisioning();

    // Act
    const result = await provision([], m);

    // Assess
    expect(result.code).toBe(0);
    expect(result.json()).toMatchObject({
      outcome: 'created',
      registrationId: 'cust-1',
      customerId: 'cust-1',
      tier: 'free',
      status: 'ACTIVE',
      keyId: 'key-id-1',
    });
    expect(result.stdout + result.stderr).not.toContain(KEY_VALUE);
    expect(m.sesMock.commandCalls(SendEmailCommand)).toHaveLength(1);
  });

  it('names the registration with --idempotency-key', async () => {
    // Act
    const result = await provision(['--idempotency-key', 'signup-42']);

    // Assess
    expect(result.json()).toMatchObject({ registrationId: 'signup-42', customerId: 'cust-1' });
  });

  it('exits 1 with a note when the key works but the email failed (EMAIL_PENDING)', async () => {
    // Prepare
    const m = mockedProvisioning();
    m.sesMock.on(SendEmailCommand).rejects(awsError('MessageRejected'));

    // Act
    const result = await provision([], m);

    // Assess
    expect(result.code).toBe(1);
    expect(result.json()).toMatchObject({ status: 'EMAIL_PENDING', keyId: 'key-id-1' });
    expect(result.stderr).toContain('keyplan provision: the key works but its email could not be sent: run the same command again');
  });

  it('queues the registration with --async instead of provisioning it', async () => {
    // Prepare
    const m = mockedProvisioning();
    const sent: ProvisioningMessage[] = [];
    const enqueue = () => ({ ...m.deps, queue: { send: async (message: ProvisioningMessage) => void sent.push(message) } });

    // Act
    const result = await provision(['--async', '--name', 'Ada'], m, enqueue);

    // Assess
    expect(result.code).toBe(0);
    expect(result.json()).toMatchObject({ outcome: 'queued', status: 'QUEUED', registrationId: 'cust-1' });
    expect(sent).toEqual([
      { registrationId: 'cust-1', request: { customerId: 'cust-1', email: 'ada@example.com', tier: 'free', name: 'Ada' } },
    ]);
    expect(m.apiGatewayMock.calls()).toHaveLength(0);
    expect(result.stderr).toContain('follow it with `keyplan status --registration cust-1`');
  });

  it.each([
    [['--tier', 'gold'], 'tier', 'tier must be one of: free, pro'],
    [['--email', 'Ada <ada@example.com>'], 'email', 'email must be one plain email address'],
    [['--name', 'Ada\u202E'], 'name', 'name must be 1 to 100 characters, without control, bidirectional or invisible formatting characters'],
  ])('exits 2 for %j naming the field, with no AWS call', async (override, field, message) => {
    // Prepare
    const m = mockedProvisioning();

    // Act
    const result = await provision(override, m);

    // Assess
    expect(result.code).toBe(2);
    expect(result.json()).toMatchObject({ error: { code: 'validation-failed', field, message } });
    expect(m.dynamoMock.calls()).toHaveLength(0);
  });
});

describe('keyplan status', () => {
  it('exits 3 for an unknown registration', async () => {
    // Prepare
    const store = { getRegistration: async () => undefined } as Partial<RegistrationStore> as RegistrationStore;

    // Act
    const result = await keyplan(['status', '--registration', 'reg-9', '--json'], {
      provisioning: () => ({ store }) as ReturnType<Services['provisioning']>,
    });

    // Assess
    expect(result.code).toBe(3);
    expect(result.json()).toEqual({ error: { exitCode: 3, code: 'not-found', message: 'no registration reg-9' } });
  });

  it('shows a customer as a table of keys', async () => {
    // Prepare
    const store = {
      getCustomer: async () => aCustomer({ keys: [aKey(), aKey({ keyId: 'key-0', state: 'RETIRING', retireAt: '2026-04-08T10:00:00.000Z' })] }),
    } as Partial<RegistrationStore> as RegistrationStore;

    // Act
    const result = await keyplan(['status', 'cust-1'], { provisioning: () => ({ store }) as ReturnType<Services['provisioning']> });

    // Assess
    expect(result.stdout).toBe(
      'customer cust-1: ACTIVE\n' +
        '  email  ada@example.com\n' +
        '  tier   free\n' +
        'keys\n' +
        '  KEY    STATE     FINGERPRINT  CREATED            ROTATE AT  RETIRE AT\n' +
        '  key-1  ACTIVE    ab12cd34     2026-03-01 00:00Z  -          -\n' +
        '  key-0  RETIRING  ab12cd34     2026-03-01 00:00Z  -          2026-04-08 10:00Z\n',
    );
  });
});

describe('keyplan rotate', () => {
  const rotation = (keys: CustomerKey[], held = ledger()) =>
    ({
      keyStore: { keysOf: async () => keys },
      ledger: held.fake,
      clock: held.clock,
      settings: { graceDays: 7, leaseSeconds: 30, sweepSeconds: 300 },
    }) as unknown as RotationDeps;

  it('uses the stack GRACE_DAYS unless --grace-days says otherwise', async () => {
    // Act
    const byDefault = await keyplan(['rotate', 'cust-1', '--json'], { rotation: () => rotation([aKey({ state: 'RETIRING' })]) });
    const immediate = await keyplan(['rotate', 'cust-1', '--grace-days', '0', '--json'], {
      rotation: () => rotation([aKey({ state: 'RETIRING' })]),
    });

    // Assess
    expect(byDefault.json()).toEqual({ customerId: 'cust-1', graceDays: 7, rotations: [] });
    expect(immediate.json()).toEqual({ customerId: 'cust-1', graceDays: 0, rotations: [] });
  });

  it('exits 4 with the wait while another change holds the customer', async () => {
    // Act
    const result = await keyplan(['rotate', 'cust-1', '--json'], { rotation: () => rotation([aKey()], ledger({ busyForSeconds: 5 })) });

    // Assess
    expect(result.code).toBe(4);
    expect(result.json()).toMatchObject({ error: { code: 'customer-busy', retryAfterSeconds: 5 } });
    expect(result.stderr).toContain('another change to customer cust-1 is running; run the same command again in 5 s');
  });

  it('exits 3 for a customer without keys', async () => {
    // Act
    const result = await keyplan(['rotate', 'cust-9'], { rotation: () => rotation([]) });

    // Assess
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('keyplan rotate: no customer cust-9');
  });
});

describe('keyplan change-tier', () => {
  function customerDeps(overrides: Partial<TierChangeDeps> = {}) {
    const held = ledger();
    const deps = {
      keys: oneShard({ removeKeyFromPlan: async () => undefined, addKeyToPlan: async () => undefined }),
      ledger: held.fake,
      clock: held.clock,
      settings: { shards: singleShard({ free: PLAN_FREE, pro: PLAN_PRO }), leaseSeconds: 30, keyRetentionDays: 30, sweepSeconds: 300 },
      ...overrides,
    } as unknown as TierChangeDeps & RevocationDeps;
    const history = () => held.commits.flatMap((change) => (change.tier ? [change.tier] : []));
    return { deps, history };
  }

  it('moves the keys and records the change under a CLI request id', async () => {
    // Prepare
    const { deps, history } = customerDeps();

    // Act
    const result = await keyplan(['change-tier', 'cust-1', 'pro', '--json'], { customers: () => deps });

    // Assess
    expect(result.code).toBe(0);
    expect(result.json()).toEqual({ customerId: 'cust-1', from: 'free', to: 'pro', changed: true, keys: [{ keyId: 'key-1', usagePlanId: PLAN_PRO }] });
    expect(history()).toEqual([{ from: 'free', to: 'pro', cause: expect.stringMatching(/^keyplan-cli-[0-9a-f-]{36}$/) }]);
  });

  it('exits 1 when the move failed and the keys went back', async () => {
    // Prepare
    const { deps } = customerDeps({
      keys: oneShard({
        removeKeyFromPlan: async () => undefined,
        addKeyToPlan: async (planId: string) => {
          if (planId === PLAN_PRO) throw awsError('BadRequestException');
        },
      }) as unknown as TierChangeDeps['keys'],
    });

    // Act
    const result = await keyplan(['change-tier', 'cust-1', 'pro', '--json'], { customers: () => deps });

    // Assess
    expect(result.code).toBe(1);
    expect(result.json()).toMatchObject({ error: { code: 'tier-change-failed', exitCode: 1 } });
    expect(result.stderr).toContain(
      'the tier change failed: every key is back in its old plan and the tier is unchanged; cause: BadRequestException: BadRequestException (simulated)',
    );
  });

  it('exits 2 for a tier the stack does not have, before asking for any dependency', async () => {
    // Prepare
    const customers = vi.fn();

    // Act
    const result = await keyplan(['change-tier', 'cust-1', 'gold'], { customers });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('keyplan change-tier: tier must be one of: free, pro\n');
    expect(customers).not.toHaveBeenCalled();
  });
});

describe('keyplan revoke', () => {
  it('revokes with --yes and lists the disabled keys', async () => {
    // Prepare
    const disabled: string[] = [];
    const held = ledger();
    const deps = {
      keys: oneShard({ disableKey: async (keyId: string) => void disabled.push(keyId) }),
      ledger: held.fake,
      clock: held.clock,
      settings: { leaseSeconds: 30, keyRetentionDays: 30, sweepSeconds: 300 },
    } as unknown as TierChangeDeps & RevocationDeps;

    // Act
    const result = await keyplan(['revoke', 'cust-1', '--yes'], { customers: () => deps });

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('customer cust-1: REVOKED; keys disabled: key-1\n');
    expect(disabled).toEqual(['key-1']);
  });
});

describe('keyplan usage', () => {
  const usageDeps = (getUsage: KeyGateway['getUsage']): UsageDeps => ({
    keys: oneShard({ getUsage }),
    keyStore: { keysOf: async () => [aKey()] },
  });

  it('prints the days of each live key', async () => {
    // Act
    const result = await keyplan(['usage', 'cust-1', '--from', '2026-03-01', '--to', '2026-03-02', '--json'], {
      usage: () => usageDeps(async () => [[5, 995]]),
    });

    // Assess
    expect(result.code).toBe(0);
    expect(result.json()).toEqual({
      customerId: 'cust-1',
      from: '2026-03-01',
      to: '2026-03-02',
      keys: [
        {
          keyId: 'key-1',
          state: 'ACTIVE',
          usagePlanId: PLAN_FREE,
          days: [
            { date: '2026-03-01', used: 5, remaining: 995 },
            { date: '2026-03-02', used: 0, remaining: null },
          ],
        },
      ],
    });
  });

  it('exits 2 naming the date for a bad range, and 1 when the endpoint has no usage data', async () => {
    // Act
    const badRange = await keyplan(['usage', 'cust-1', '--from', '2026-03-02', '--json'], { usage: () => usageDeps(async () => []) });
    const unavailable = await keyplan(['usage', 'cust-1', '--from', '2026-03-01', '--to', '2026-03-02'], {
      usage: () =>
        usageDeps(async () => {
          throw new UsageUnavailableError('no GetUsage');
        }),
    });

    // Assess
    expect(badRange.code).toBe(2);
    expect(badRange.json()).toMatchObject({ error: { code: 'validation-failed', field: 'to' } });
    expect(unavailable.code).toBe(1);
    expect(unavailable.stderr).toContain('usage data is unavailable from this AWS endpoint');
  });
});

describe('keyplan reconcile', () => {
  /** One managed key whose record says free but which sits in no plan: a repair-plan action. */
  function reconcileDeps(addKeyToPlan: () => Promise<void>): ReconcileDeps {
    const listed: ListedKey = {
      id: 'key-1',
      name: `kp-${'ab'.repeat(16)}`,
      createdAt: new Date('2026-01-01T00:00:00Z'),
      tags: { 'keyplan:managed': 'true', 'keyplan:customer': 'cust-1' },
    };
    return {
      inventory: oneShard({
        listKeyPages: async function* () {
          yield [listed];
        },
        keysInPlan: async () => [],
        keyExists: async () => true,
        addKeyToPlan,
        removeKeyFromPlan: async () => undefined,
        deleteKey: async () => undefined,
      }),
      records: {
        trackedKeyPages: async function* () {
          yield [aKey()];
        },
        tiersOf: async () => new Map([['cust-1', 'free']]),
        closeRecord: async () => undefined,
      },
      ledger: ledger().fake,
      registrations: { getRegistration: async () => undefined },
      clock: () => NOW,
      settings: {
        keyNamePrefix: 'kp',
        stage: 'test',
        shards: singleShard({ free: PLAN_FREE, pro: PLAN_PRO }),
        minKeyAgeMinutes: 60,
        leaseSeconds: 30,
        sweepSeconds: 300,
      },
    };
  }

  it('--dry-run reports what it found and changes nothing', async () => {
    // Prepare
    const addKeyToPlan = vi.fn(async () => undefined);

    // Act
    const result = await keyplan(['reconcile', '--dry-run', '--json'], { reconcile: () => reconcileDeps(addKeyToPlan) });

    // Assess
    expect(result.code).toBe(0);
    expect(result.json()).toMatchObject({
      dryRun: true,
      at: NOW.toISOString(),
      found: { 'repair-plan': 1 },
      done: { 'repair-plan': 0 },
      failures: 0,
      actions: [{ kind: 'repair-plan', keyId: 'key-1', fromPlans: [], toPlan: PLAN_FREE }],
    });
    expect(addKeyToPlan).not.toHaveBeenCalled();
  });

  it('exits 1 with a note when a repair failed', async () => {
    // Act
    const result = await keyplan(['reconcile'], {
      reconcile: () =>
        reconcileDeps(async () => {
          throw awsError('BadRequestException');
        }),
    });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^reconcile at 2026-04-01T10:00:00.000Z\n/);
    expect(result.stdout).toMatch(/\n {2}\(failed\) +1\n/);
    expect(result.stderr).toContain('keyplan reconcile: 1 repair failed: run reconcile again');
  });
});
