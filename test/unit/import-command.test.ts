import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { formatSummary } from '../../cli/import-command';
import { type CliIo, runKeyplan } from '../../cli/run-keyplan';
import type { Services } from '../../cli/services';
import type { Config } from '../../shared/config';
import type { ImportDeps } from '../../shared/provisioning/import-registrations';
import type { ProvisioningMessage } from '../../shared/provisioning/ports';
import type { RegistrationStore } from '../../shared/core/ports';
import { useTempFiles } from '../support/temp-files';

const DEPLOYED_ENV = {
  TABLE_NAME: 'keyplan-prod',
  TIER_MAP: JSON.stringify({ free: 'plan-free', pro: 'plan-pro' }),
  SENDER_EMAIL: 'keys@example.com',
  QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/keyplan-prod-queue',
  AWS_REGION: 'eu-west-1',
};

const { folder, fileWith } = useTempFiles('import-command');

/** A table that accepts every claim and a queue that keeps what it is sent. */
function fakeDeps(config: Config) {
  const sent: ProvisioningMessage[] = [];
  const store = {
    claim: async (registration) => ({ kind: 'claimed', registration }),
  } as Partial<RegistrationStore> as RegistrationStore;
  const deps: ImportDeps = {
    store,
    queue: { send: async (message) => void sent.push(message) },
    clock: () => new Date(),
    settings: { shards: config.shards, keyNamePrefix: 'kp', stage: 'test', rotationDays: 90, leaseSeconds: 60, sweepSeconds: 300 },
  };
  return { deps, sent };
}

/** `npm run import -- ARGV`, with the queue and table faked. */
function run(argv: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; tty?: boolean } = {}) {
  let stdout = '';
  let stderr = '';
  const made: ReturnType<typeof fakeDeps>[] = [];
  const close = vi.fn();
  const io: CliIo = {
    argv: ['import', ...argv],
    invocation: 'npm run import --',
    env: options.env ?? { ...DEPLOYED_ENV },
    cwd: options.cwd ?? folder.path,
    stdout: { write: (text: string) => (stdout += text) },
    stderr: Object.assign(
      { write: (text: string) => (stderr += String(text)), isTTY: options.tty ?? false },
    ) as unknown as CliIo['stderr'],
    services: (config) =>
      ({
        enqueue: () => {
          const fake = fakeDeps(config);
          made.push(fake);
          return fake.deps;
        },
        close,
      }) as Partial<Services> as Services,
  };
  return runKeyplan(io).then((code) => ({ code, stdout: () => stdout, stderr: () => stderr, made, close, io }));
}

const MIXED_CSV =
  'customerId,email,tier\n' +
  Array.from({ length: 20 }, (_, i) => `cust-${i + 1},c${i + 1}@example.com,${i === 4 ? 'gold' : 'free'}`).join('\n') +
  '\ncust-21,not-an-address,free\n';

describe('npm run import', () => {
  it('prints usage for --help and exits 0', async () => {
    // Act
    const result = await run(['--help']);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout()).toMatch(/^Usage: npm run import -- FILE/);
  });

  it('queues every row, says which stack it uses, and exits 0', async () => {
    // Prepare
    const file = await fileWith('ok.jsonl', '{"customerId":"c-1","email":"a@example.com","tier":"pro"}\n');

    // Act
    const result = await run([file]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr()).toContain('using the environment: table keyplan-prod in eu-west-1');
    expect(result.stdout()).toMatch(/1 rows\n {2}queued +1\n {2}requeued +0\n/);
    expect(result.made[0]?.sent).toEqual([
      { registrationId: 'c-1', request: { customerId: 'c-1', email: 'a@example.com', tier: 'pro' } },
    ]);
    expect(result.close).toHaveBeenCalled();
  });

  it('exits 1 with --json summary listing invalid rows by line, after queueing the valid ones', async () => {
    // Prepare
    const file = await fileWith('mixed.csv', MIXED_CSV);

    // Act
    const result = await run([file, '--json']);

    // Assess
    expect(result.code).toBe(1);
    const summary = JSON.parse(result.stdout());
    expect(summary).toMatchObject({
      file,
      format: 'csv',
      rows: 21,
      counts: { queued: 19, requeued: 0, skipped: 0, invalid: 2, failed: 0 },
      invalid: [
        { line: 6, field: 'tier', message: 'tier must be one of: free, pro' },
        { line: 22, field: 'email', message: 'email must be one plain email address' },
      ],
    });
    expect(result.made[0]?.sent).toHaveLength(19);
  });

  it('prints a plain progress line about every tenth of the file when stderr is not a terminal', async () => {
    // Prepare
    const file = await fileWith('progress.csv', MIXED_CSV);

    // Act
    const result = await run([file, '--json']);

    // Assess
    const lines = result.stderr().split('\n').filter((line) => line.startsWith('importing:'));
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatch(/^importing: 14% \(3\/21 rows\)/);
    expect(lines.at(-1)).toBe('importing: 100% (21/21 rows): 19 queued, 0 requeued, 0 skipped, 2 invalid, 0 failed');
  });

  it('lists invalid rows as "line N: message", the message naming the field, in the text summary', async () => {
    // Prepare
    const file = await fileWith('text.csv', MIXED_CSV);

    // Act
    const result = await run([file]);

    // Assess
    expect(result.stdout()).toContain(
      'Invalid rows:\n  line 6: tier must be one of: free, pro\n  line 22: email must be one plain email address\n',
    );
  });

  it.each([
    [[], /no FILE given/],
    [['a.csv', 'b.csv'], /unexpected argument ".*b\.csv"/],
    [['a.csv', '--concurrency', '0'], /--concurrency must be/],
    [['a.csv', '--dry-run'], /Unknown option '--dry-run'/],
    [['missing.csv'], /missing\.csv: no such file/],
  ])('exits 2 for %j with a message and no stack trace', async (argv, message) => {
    // Act
    const result = await run(argv.map((arg) => (arg.endsWith('.csv') ? join(folder.path, arg) : arg)));

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr()).toMatch(message);
    expect(result.stderr()).not.toMatch(/\n\s+at /);
    expect(result.made).toHaveLength(0);
  });

  it('exits 2 naming an unknown column before anything is queued', async () => {
    // Prepare
    const file = await fileWith('columns.csv', 'customerId,email,tier,plan\nc-1,a@example.com,free,x\n');

    // Act
    const result = await run([file]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr()).toContain('unknown column "plan"');
    expect(result.made).toHaveLength(0);
  });

  it('exits 2 when the environment names a table but not the rest', async () => {
    // Prepare
    const file = await fileWith('env.csv', 'customerId,email,tier\n');

    // Act
    const result = await run([file], { env: { TABLE_NAME: 'keyplan-prod' } });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr()).toMatch(/TIER_MAP is not set.*SENDER_EMAIL is not set/);
  });

  it('exits 2 without TABLE_NAME when there is no local stack either', async () => {
    // Prepare
    const file = await fileWith('nostack.csv', 'customerId,email,tier\n');
    const cwd = await mkdtemp(join(folder.path, 'empty-'));

    // Act
    const result = await run([file], { env: {}, cwd });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr()).toContain('there is no .keyplan/local.json: run `npm start`');
  });

  it('without TABLE_NAME uses the local stack of npm start, and points the SDK at its endpoint', async () => {
    // Prepare
    const cwd = await mkdtemp(join(folder.path, 'local-'));
    await mkdir(join(cwd, '.keyplan'));
    await writeFile(
      join(cwd, '.keyplan', 'local.json'),
      JSON.stringify({
        apiUrl: 'http://127.0.0.1:3000',
        endpoint: 'http://127.0.0.1:4566',
        region: 'us-east-1',
        tableName: 'keyplan-local',
        queueUrl: 'http://127.0.0.1:4566/123456789012/keyplan-local-queue',
        dlqUrl: 'http://127.0.0.1:4566/123456789012/keyplan-local-dlq',
        restApiId: 'abc123',
        stage: 'local',
        usagePlans: { free: 'p1', pro: 'p2' },
        sender: 'keys@keyplan.local',
      }),
    );
    const file = await fileWith('local.csv', 'customerId,email,tier\nc-1,a@example.com,free\n');
    const env: NodeJS.ProcessEnv = {};

    // Act
    const result = await run([file], { env, cwd });

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr()).toContain('using the local stack (.keyplan/local.json): table keyplan-local at http://127.0.0.1:4566');
    expect(env).toMatchObject({ AWS_ENDPOINT_URL: 'http://127.0.0.1:4566', TABLE_NAME: 'keyplan-local' });
  });
});

describe('formatSummary', () => {
  it('lists an invalid row by its message alone: it names the field already', () => {
    // Act
    const text = formatSummary('c.csv', {
      rows: 2,
      counts: { queued: 0, requeued: 0, skipped: 0, invalid: 2, failed: 0 },
      invalid: [
        { line: 2, field: 'customerId', message: 'customerId is required' },
        { line: 3, message: 'has 5 fields, the header names 4' },
      ],
      skipped: [],
      failed: [],
    });

    // Assess
    expect(text).toContain('Invalid rows:\n  line 2: customerId is required\n  line 3: has 5 fields, the header names 4\n');
  });
});
