import { GetFunctionConfigurationCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CliIo, runKeyplan } from '../../cli/run-keyplan';
import type { Services } from '../../cli/services';
import { DAY_MS } from '../../shared/core/model';
import type { ShardRegistry } from '../../shared/shards/ports';
import { aRegisteredCustomer, aWorld, itemOf, recordingPorts, UNIT_SETTINGS, useCases } from '../support/in-memory-fixtures';
import { START } from '../support/in-memory-model';
import { directPorts, type WorldPorts } from '../support/in-memory-scheduling';
import type { InMemoryWorld } from '../support/in-memory-world';
import { awsError } from '../support/provisioning-fakes';

const lambda = mockClient(LambdaClient);

const ENV = {
  TABLE_NAME: 'keyplan-prod',
  TIER_MAP: JSON.stringify({ free: 'plan-free', pro: 'plan-pro' }),
  SENDER_EMAIL: 'keys@example.com',
  AWS_REGION: 'eu-west-1',
};
/** What `provider.environment` and the function's own environment give rotateKeys of stage prod. */
const ROTATE_KEYS_ENV = { ...ENV, ROTATION_BATCH_SIZE: '2', KEY_NAME_PREFIX: 'keyplan-prod' };
const NOW = new Date('2026-06-01T10:00:00.000Z');

const noRegistry: ShardRegistry = { describe: async () => [], setState: async () => undefined, activeKeysIn: async () => [] };

/** The jobs' deps over an in-memory world (its own ports unless given others), as the Services seam hands them out. */
function worldServices(world: InMemoryWorld, ports: WorldPorts = directPorts(world)): Partial<Services> {
  const cases = useCases(ports);
  const rotation = { ...cases.rotation, settings: UNIT_SETTINGS };
  return {
    rotation: () => rotation,
    shards: () => ({ ...rotation, registry: noRegistry }),
    resume: () => ({ ...cases.finish, ...cases.provisioning, stalled: ports.registrations, settings: UNIT_SETTINGS }),
  };
}

/** `keyplan ARGV` with the environment's stack (or --stage), the given fakes, or the real AWS services when none. */
async function keyplan(argv: string[], fakes?: Partial<Services>, env: NodeJS.ProcessEnv = { ...ENV }) {
  let stdout = '';
  let stderr = '';
  const servicesMade = vi.fn();
  const io: CliIo = {
    argv,
    env,
    cwd: '/',
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += String(text)), isTTY: false } as unknown as CliIo['stderr'],
    now: () => NOW,
    ...(fakes ? { services: () => (servicesMade(), { ...fakes, close: () => undefined }) as Services } : {}),
  };
  const code = await runKeyplan(io);
  return { code, stdout, stderr, servicesMade, json: () => JSON.parse(stdout) as Record<string, unknown> };
}

beforeEach(() => {
  lambda.reset();
  vi.stubEnv('AWS_REGION', 'eu-west-1');
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('keyplan jobs run (arguments)', () => {
  it.each([
    [['jobs'], /^keyplan jobs: no verb given: use "jobs run JOB" \(the jobs are: rotate-keys, retire-keys, reconcile, resume-registrations\)/],
    [['jobs', 'start', 'rotate-keys'], /^keyplan jobs: unknown jobs command "start": use "jobs run JOB"/],
    [['jobs', 'run'], /^keyplan jobs: no JOB given; the jobs are: rotate-keys, retire-keys, reconcile, resume-registrations/],
    [['jobs', 'run', 'rotate'], /^keyplan jobs: unknown job "rotate"; the jobs are: rotate-keys, retire-keys/],
    [['jobs', 'run', 'reconcile', 'now'], /^keyplan jobs: unexpected argument "now"/],
    [['jobs', 'run', 'rotate-keys', '--at'], /^keyplan jobs: Option '--at <value>' argument missing/],
    [['jobs', 'run', 'rotate-keys', '--at', '2026-09-17T03:00:00'], /--at must be a date and time in ISO 8601 with a time zone, such as 2026-06-09T03:00:00Z, got "2026-09-17T03:00:00"/],
    [['jobs', 'run', 'rotate-keys', '--at', '2026-09-17'], /--at must be a date and time in ISO 8601 with a time zone/],
    [['jobs', 'run', 'rotate-keys', '--at', 'tomorrow'], /--at must be a date and time in ISO 8601/],
    [['jobs', 'run', 'rotate-keys', '--at', '2027-02-29T03:00:00Z'], /got "2027-02-29T03:00:00Z"/],
    [['jobs', 'run', 'rotate-keys', '--at', '2026-09-17T24:00:00Z'], /got "2026-09-17T24:00:00Z"/],
    [['jobs', 'run', 'rotate-keys', '--at', '2026-09-17T03:00:00+25:00'], /got "2026-09-17T03:00:00\+25:00"/],
    [['jobs', 'run', 'rotate-keys', '--at', '1789057800'], /got "1789057800"/],
  ])('exits 2 for %j with one line, before choosing a stack', async (argv, message) => {
    // Act
    const result = await keyplan(argv, {});

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toMatch(message);
    expect(result.stderr).toContain('Run `keyplan jobs --help` for usage.');
    expect(result.stdout).toBe('');
    expect(result.servicesMade).not.toHaveBeenCalled();
    expect(lambda.calls()).toHaveLength(0);
  });

  it.each([
    ['2026-09-17T03:00:00Z', '2026-09-17T03:00:00.000Z'],
    ['2026-09-17T03:00Z', '2026-09-17T03:00:00.000Z'],
    ['2026-09-17t05:00:00.250+02:00', '2026-09-17T03:00:00.250Z'],
    ['2026-09-16T22:00:00-0500', '2026-09-17T03:00:00.000Z'],
    ['2028-02-29T03:00:00Z', '2028-02-29T03:00:00.000Z'],
  ])('takes --at %s as %s', async (given, instant) => {
    // Prepare
    const world = aWorld();

    // Act
    const result = await keyplan(['jobs', 'run', 'retire-keys', '--dry-run', '--at', given, '--json'], worldServices(world));

    // Assess
    expect(result.code).toBe(0);
    expect(result.json()).toMatchObject({ job: 'retire-keys', at: instant, dryRun: true });
  });

  it('runs as of now without --at', async () => {
    // Act
    const result = await keyplan(['jobs', 'run', 'resume-registrations', '--dry-run', '--json'], worldServices(aWorld()));

    // Assess
    expect(result.json()).toEqual({
      job: 'resume-registrations',
      at: NOW.toISOString(),
      dryRun: true,
      report: { batchSize: 100, registrations: [], interrupted: [] },
    });
  });
});

describe('keyplan jobs run (the local stack or the environment)', () => {
  it('runs the job with the batch size of the configuration and reports it, as text', async () => {
    // Prepare: three keys due 90 days after START; a batch of 2
    const world = aWorld();
    for (const customerId of ['c1', 'c2', 'c3']) await aRegisteredCustomer(world, customerId);
    const at = new Date(START.getTime() + 91 * DAY_MS).toISOString();

    // Act
    const dry = await keyplan(['jobs', 'run', 'rotate-keys', '--at', at, '--dry-run'], worldServices(world), { ...ENV, ROTATION_BATCH_SIZE: '2' });
    const run = await keyplan(['jobs', 'run', 'rotate-keys', '--at', at], worldServices(world), { ...ENV, ROTATION_BATCH_SIZE: '2' });

    // Assess
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe(
      'rotate-keys as of 2026-06-01T09:00:00Z, dry run (nothing changed): would rotate 2 keys (3 due in all, batch 2)\n' +
        '  KEY      CUSTOMER  SHARD  ROTATE AT\n' +
        '  key0001  c1        home   2026-05-31 09:00Z\n' +
        '  key0002  c2        home   2026-05-31 09:01Z\n',
    );
    expect(dry.stderr).toContain('keyplan jobs: 3 keys due, more than one batch (2): later runs take the rest\n');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      'rotate-keys as of 2026-06-01T09:00:00Z: 2 keys rotated\n  rotated    2\n  skipped    0\n  busy       0\n  failed     0\n  still due  1\n',
    );
    expect(run.stderr).toContain('keyplan jobs: 1 key still due: run the job again, or wait for its schedule\n');
    expect(itemOf(world, 'c3', 'key0003')?.state).toBe('ACTIVE');
  });

  it('exits 1 with a note when part of the run failed; the key stays due', async () => {
    // Prepare
    const world = aWorld();
    await aRegisteredCustomer(world, 'c1');
    const { ports } = recordingPorts(world, {
      gateway: {
        ensureKey: async () => {
          throw new Error('boom');
        },
      },
    });
    const at = new Date(START.getTime() + 91 * DAY_MS).toISOString();

    // Act
    const result = await keyplan(['jobs', 'run', 'rotate-keys', '--at', at, '--json'], worldServices(world, ports));

    // Assess
    expect(result.code).toBe(1);
    expect(result.json()).toMatchObject({ job: 'rotate-keys', dryRun: false, report: { rotated: 0, failed: 1, remaining: 1 } });
    expect(result.stderr).toContain('keyplan jobs: 1 rotation failed: those keys stay due for the next run (--verbose shows why)\n');
  });
});

describe('keyplan jobs run --stage', () => {
  const answer = (report: object) => ({ StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(report)) as never });
  const REPORT = { rotated: 3, skipped: 0, busy: 1, failed: 0, remaining: 1 };

  beforeEach(() => {
    lambda
      .on(GetFunctionConfigurationCommand, { FunctionName: 'keyplan-prod-rotateKeys' })
      .resolves({ Environment: { Variables: ROTATE_KEYS_ENV } });
  });

  it("invokes the stage's function with a scheduled event at --at and prints its answer", async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves(answer(REPORT));

    // Act
    const result = await keyplan(['jobs', 'run', 'rotate-keys', '--stage', 'prod', '--at', '2026-09-17T03:00:00Z', '--json']);

    // Assess: the job's own function configured the stack and was invoked, synchronously
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^keyplan jobs: using stage prod: table keyplan-prod in eu-west-1\n/);
    expect(result.json()).toEqual({ job: 'rotate-keys', at: '2026-09-17T03:00:00.000Z', dryRun: false, function: 'keyplan-prod-rotateKeys', report: REPORT });
    const [invoke] = lambda.commandCalls(InvokeCommand);
    expect(invoke?.args[0].input).toMatchObject({ FunctionName: 'keyplan-prod-rotateKeys', InvocationType: 'RequestResponse' });
    expect(JSON.parse(new TextDecoder().decode(invoke?.args[0].input.Payload as Uint8Array))).toEqual({
      version: '0',
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      time: '2026-09-17T03:00:00Z',
      detail: {},
    });
    expect(result.stderr).toContain('keyplan jobs: 1 key waited for a busy customer: the next run rotates them\n');
  });

  it("runs the resume sweep in both of its functions, in the sweep's order, and reports them as one run", async () => {
    // Prepare
    const registrations = { resumed: 2, busy: 0, failed: 0, retryLater: 0, givenUp: 0 };
    const interrupted = { finished: 1, nothingLeft: 0, busy: 0, failed: 0 };
    lambda
      .on(GetFunctionConfigurationCommand, { FunctionName: 'keyplan-prod-resumeRegistrations' })
      .resolves({ Environment: { Variables: ENV } });
    lambda.on(InvokeCommand, { FunctionName: 'keyplan-prod-resumeRegistrations' }).resolves(answer(registrations));
    lambda.on(InvokeCommand, { FunctionName: 'keyplan-prod-finishOperations' }).resolves(answer(interrupted));

    // Act
    const result = await keyplan(['jobs', 'run', 'resume-registrations', '--stage', 'prod', '--at', '2026-09-17T03:05:00Z', '--json']);
    const text = await keyplan(['jobs', 'run', 'resume-registrations', '--stage', 'prod', '--at', '2026-09-17T03:05:00Z']);

    // Assess: the configuration from resumeRegistrations, each function invoked once with the same event time
    expect(result.code).toBe(0);
    expect(result.json()).toEqual({
      job: 'resume-registrations',
      at: '2026-09-17T03:05:00.000Z',
      dryRun: false,
      functions: ['keyplan-prod-resumeRegistrations', 'keyplan-prod-finishOperations'],
      report: { registrations, interrupted },
    });
    expect(lambda.commandCalls(GetFunctionConfigurationCommand)[0]?.args[0].input).toEqual({ FunctionName: 'keyplan-prod-resumeRegistrations' });
    const invokes = lambda.commandCalls(InvokeCommand).map((call) => call.args[0].input);
    expect(invokes.map((input) => input.FunctionName)).toEqual([
      'keyplan-prod-resumeRegistrations',
      'keyplan-prod-finishOperations',
      'keyplan-prod-resumeRegistrations',
      'keyplan-prod-finishOperations',
    ]);
    for (const input of invokes) {
      expect(JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array))).toMatchObject({ time: '2026-09-17T03:05:00Z' });
    }
    expect(text.stdout.split('\n')[0]).toBe(
      'resume-registrations as of 2026-09-17T03:05:00Z on keyplan-prod-resumeRegistrations and keyplan-prod-finishOperations: 2 registrations resumed, 1 interrupted operation finished',
    );
  });

  it('names the function in the text and reads each job from its own function', async () => {
    // Prepare
    lambda
      .on(GetFunctionConfigurationCommand, { FunctionName: 'keyplan-prod-retireKeys' })
      .resolves({ Environment: { Variables: ENV } });
    lambda.on(InvokeCommand).resolves(answer({ reminded: 1, disabled: 2, deleted: 0, busy: 0, failed: 0 }));

    // Act
    const result = await keyplan(['jobs', 'run', 'retire-keys', '--stage', 'prod', '--at', '2026-09-25T03:00:00Z']);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe('retire-keys as of 2026-09-25T03:00:00Z on keyplan-prod-retireKeys: 1 reminder sent, 2 keys disabled, 0 deleted');
    expect(lambda.commandCalls(GetFunctionConfigurationCommand)[0]?.args[0].input).toEqual({ FunctionName: 'keyplan-prod-retireKeys' });
    expect(lambda.commandCalls(InvokeCommand)[0]?.args[0].input.FunctionName).toBe('keyplan-prod-retireKeys');
  });

  it('exits 1 when the answer reports failures, and when the function itself failed', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(answer({ ...REPORT, failed: 2 }))
      .resolvesOnce({
        StatusCode: 200,
        FunctionError: 'Unhandled',
        Payload: new TextEncoder().encode(JSON.stringify({ errorType: 'TransientAwsError', errorMessage: 'DynamoDB kept throttling', trace: ['at x'] })) as never,
      });

    // Act
    const partly = await keyplan(['jobs', 'run', 'rotate-keys', '--stage', 'prod']);
    const failed = await keyplan(['jobs', 'run', 'rotate-keys', '--stage', 'prod', '--json']);

    // Assess
    expect(partly.code).toBe(1);
    expect(partly.stderr).toContain('2 rotations failed');
    expect(failed.code).toBe(1);
    expect(failed.json()).toEqual({
      error: {
        exitCode: 1,
        code: 'function-failed',
        message: 'keyplan-prod-rotateKeys failed: TransientAwsError: DynamoDB kept throttling (its logs have the details)',
      },
    });
    expect(failed.stderr).not.toContain('at x');
  });

  it('exits 4 while a run of the function is on, and 2 when the function is missing', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .rejectsOnce(Object.assign(awsError('TooManyRequestsException', 429), { Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' }))
      .rejectsOnce(awsError('ResourceNotFoundException', 404));

    // Act
    const busy = await keyplan(['jobs', 'run', 'rotate-keys', '--stage', 'prod', '--json']);
    const missing = await keyplan(['jobs', 'run', 'rotate-keys', '--stage', 'prod', '--json']);

    // Assess: one attempt each, no retry
    expect(busy.code).toBe(4);
    expect(busy.json()).toMatchObject({
      error: { code: 'function-busy', message: 'keyplan-prod-rotateKeys is running already (one run at a time): run the same command again later' },
    });
    expect(missing.code).toBe(2);
    expect(missing.json()).toMatchObject({ error: { code: 'configuration', message: expect.stringContaining('there is no function keyplan-prod-rotateKeys') } });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(2);
  });

  it('with --dry-run invokes nothing: the reads run here, with the batch size of the job\'s function', async () => {
    // Prepare
    const world = aWorld();
    for (const customerId of ['c1', 'c2', 'c3']) await aRegisteredCustomer(world, customerId);
    const at = new Date(START.getTime() + 91 * DAY_MS).toISOString();

    // Act
    const result = await keyplan(['jobs', 'run', 'rotate-keys', '--stage', 'prod', '--at', at, '--dry-run', '--json'], worldServices(world));

    // Assess
    expect(result.code).toBe(0);
    expect(result.json()).toMatchObject({ job: 'rotate-keys', dryRun: true, report: { batchSize: 2, due: { totalDue: 3 } } });
    expect(result.json()).not.toHaveProperty('function');
    expect((result.json().report as { due: { keys: unknown[] } }).due.keys).toHaveLength(2);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });
});
