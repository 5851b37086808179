import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CliIo, runKeyplan } from '../../cli/run-keyplan';
import type { Services } from '../../cli/services';
import { selectStack } from '../../cli/stack';
import type { Config } from '../../shared/config';
import type { RegistrationStore } from '../../shared/core/ports';
import { awsError } from '../support/provisioning-fakes';
import { useTempFiles } from '../support/temp-files';

const lambda = mockClient(LambdaClient);
const { folder } = useTempFiles('cli-stack');

/** What `provider.environment` gives every function of stage prod (serverless.yml). */
const PROD_FUNCTION_ENV = {
  POWERTOOLS_SERVICE_NAME: 'keyplan',
  NODE_OPTIONS: '--enable-source-maps',
  TABLE_NAME: 'keyplan-prod',
  TIER_MAP: JSON.stringify({ free: 'plan-free', pro: 'plan-pro' }),
  SENDER_EMAIL: 'keys@example.com',
  GRACE_DAYS: '5',
  KEY_NAME_PREFIX: 'keyplan-prod',
  LEASE_SECONDS: '90',
  QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/keyplan-prod-provisioning',
};

const LOCAL_STACK = {
  apiUrl: 'http://127.0.0.1:3000',
  endpoint: 'http://127.0.0.1:4566',
  region: 'us-east-1',
  tableName: 'keyplan-local',
  queueUrl: 'http://127.0.0.1:4566/123456789012/keyplan-local-provisioning',
  dlqUrl: 'http://127.0.0.1:4566/123456789012/keyplan-local-provisioning-dlq',
  restApiId: 'abc123',
  stage: 'local',
  usagePlans: { free: 'p1', pro: 'p2' },
  sender: 'keys@keyplan.local',
};

beforeEach(() => {
  lambda.reset();
  // The Lambda client takes the caller's region from the environment, like every AWS client.
  vi.stubEnv('AWS_REGION', 'eu-west-1');
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('selectStack with --stage', () => {
  it("reads the configuration of the stage's register function, whatever the environment says", async () => {
    // Prepare
    lambda
      .on(GetFunctionConfigurationCommand, { FunctionName: 'keyplan-prod-register' })
      .resolves({ Environment: { Variables: PROD_FUNCTION_ENV } });

    // Act
    const stack = await selectStack({ stage: 'prod' }, { env: { TABLE_NAME: 'some-other-table' }, cwd: folder.path });

    // Assess
    expect(stack).toMatchObject({
      description: 'stage prod: table keyplan-prod in eu-west-1',
      local: false,
      config: {
        tableName: 'keyplan-prod',
        tierMap: { free: 'plan-free', pro: 'plan-pro' },
        graceDays: 5,
        keyNamePrefix: 'keyplan-prod',
        queueUrl: PROD_FUNCTION_ENV.QUEUE_URL,
      },
    });
    expect(lambda.commandCalls(GetFunctionConfigurationCommand)).toHaveLength(1);
  });

  it('says which function is missing where, when the stage is not deployed there', async () => {
    // Prepare
    lambda.on(GetFunctionConfigurationCommand).rejects(awsError('ResourceNotFoundException', 404));

    // Act
    const result = selectStack({ stage: 'qa' }, { env: {}, cwd: folder.path });

    // Assess
    await expect(result).rejects.toThrow('there is no function keyplan-qa-register in eu-west-1: is stage "qa" deployed there?');
  });

  it('refuses a function whose configuration is not keyplan\'s, naming what is missing', async () => {
    // Prepare
    lambda.on(GetFunctionConfigurationCommand).resolves({ Environment: { Variables: { TABLE_NAME: 't' } } });

    // Act
    const result = selectStack({ stage: 'prod' }, { env: {}, cwd: folder.path });

    // Assess
    await expect(result).rejects.toThrow(/the configuration of keyplan-prod-register is not keyplan's: .*TIER_MAP is not set/);
  });

  it('asks for a region when there is none', async () => {
    // Prepare
    vi.stubEnv('AWS_REGION', undefined);
    vi.stubEnv('AWS_CONFIG_FILE', join(folder.path, 'no-such-config'));

    // Act
    const result = selectStack({ stage: 'prod' }, { env: {}, cwd: folder.path });

    // Assess
    await expect(result).rejects.toThrow('no AWS region for --stage: set AWS_REGION, or a region in your AWS profile');
    expect(lambda.calls()).toHaveLength(0);
  });
});

describe('selectStack without --stage', () => {
  it('uses the environment when it names a table', async () => {
    // Act
    const stack = await selectStack(
      {},
      { env: { TABLE_NAME: 'keyplan-dev', TIER_MAP: '{"free":"p"}', SENDER_EMAIL: 'k@example.com', AWS_REGION: 'eu-west-1' }, cwd: folder.path },
    );

    // Assess
    expect(stack).toMatchObject({ description: 'the environment: table keyplan-dev in eu-west-1', local: false });
    expect(lambda.calls()).toHaveLength(0);
  });

  it('finds the local stack of npm start in a folder above, and points the SDK at its endpoint', async () => {
    // Prepare
    const project = await mkdtemp(join(folder.path, 'project-'));
    await mkdir(join(project, '.keyplan'));
    await mkdir(join(project, 'cli', 'commands'), { recursive: true });
    await writeFile(join(project, '.keyplan', 'local.json'), JSON.stringify(LOCAL_STACK));
    const env: NodeJS.ProcessEnv = {};

    // Act
    const stack = await selectStack({}, { env, cwd: join(project, 'cli', 'commands') });

    // Assess
    expect(stack).toMatchObject({
      description: 'the local stack (../../.keyplan/local.json): table keyplan-local at http://127.0.0.1:4566',
      local: true,
      config: { tableName: 'keyplan-local', tierMap: { free: 'p1', pro: 'p2' } },
    });
    expect(env).toMatchObject({ AWS_ENDPOINT_URL: 'http://127.0.0.1:4566', AWS_REGION: 'us-east-1' });
  });

  it('says to run npm start again when the local stack file is not one', async () => {
    // Prepare
    const project = await mkdtemp(join(folder.path, 'broken-'));
    await mkdir(join(project, '.keyplan'));
    await writeFile(join(project, '.keyplan', 'local.json'), '{"endpoint": 1}');

    // Act
    const result = selectStack({}, { env: {}, cwd: project });

    // Assess
    await expect(result).rejects.toThrow('.keyplan/local.json is not a local stack description: run `npm start` again');
  });
});

describe('keyplan --stage', () => {
  async function statusOnProd(extra: string[] = []) {
    let stdout = '';
    let stderr = '';
    const configs: Config[] = [];
    const store = { getRegistration: async () => undefined } as Partial<RegistrationStore> as RegistrationStore;
    const io: CliIo = {
      argv: ['status', '--registration', 'r-1', '--stage', 'prod', ...extra],
      env: {},
      cwd: folder.path,
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += String(text)) } as unknown as CliIo['stderr'],
      services: (config) => {
        configs.push(config);
        return { provisioning: () => ({ store }), close: () => undefined } as unknown as Services;
      },
    };
    const code = await runKeyplan(io);
    return { code, stdout, stderr, configs };
  }

  it('runs the command on the stage it read', async () => {
    // Prepare
    lambda.on(GetFunctionConfigurationCommand).resolves({ Environment: { Variables: PROD_FUNCTION_ENV } });

    // Act
    const result = await statusOnProd();

    // Assess
    expect(result.code).toBe(3);
    expect(result.stderr).toBe('keyplan status: using stage prod: table keyplan-prod in eu-west-1\nkeyplan status: no registration r-1\n');
    expect(result.configs.map((config) => config.tableName)).toEqual(['keyplan-prod']);
  });

  it('exits 2 when the caller may not read the function configuration', async () => {
    // Prepare
    lambda.on(GetFunctionConfigurationCommand).rejects(awsError('AccessDeniedException', 403));

    // Act
    const result = await statusOnProd(['--json']);

    // Assess
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { code: 'aws-access-denied', exitCode: 2 } });
    expect(result.stderr).toBe('keyplan status: AWS refused access: AccessDeniedException: AccessDeniedException (simulated)\n');
    expect(result.configs).toHaveLength(0);
  });
});
