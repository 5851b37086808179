import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { functionEnvironment } from '../infra/local/bootstrap';
import { awsErrorName } from '../shared/aws/aws-errors';
import { type Config, ConfigError, loadConfig } from '../shared/config';
import { object, type Schema, text, validate } from '../shared/validation';
import { UsageError } from './failures';

/** The stack a command works on, and how to say which it is. */
export interface Stack {
  config: Config;
  /** For "using ..." on stderr. */
  description: string;
  /** Local: the emulator of `npm start`, which may simply not be running. */
  local: boolean;
}

export interface StackIo {
  /** Written to for the local stack: the AWS SDK reads its endpoint and credentials from it. */
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export const LOCAL_STACK_FILE = '.keyplan/local.json';

/** tier -> usage plan id, as `npm start` wrote it. */
const usagePlans: Schema<Record<string, string>> = (value, field) => {
  const plans = object({})(value, field) as Record<string, unknown>;
  for (const [tier, plan] of Object.entries(value as object)) plans[tier] = text()(plan, `${field}.${tier}`);
  return plans as Record<string, string>;
};

const localStackSchema = object({
  endpoint: text({ min: 1 }),
  region: text({ min: 1 }),
  tableName: text({ min: 1 }),
  queueUrl: text({ min: 1 }),
  dlqUrl: text(),
  restApiId: text(),
  stage: text(),
  usagePlans,
  sender: text({ min: 1 }),
});

/** Stage names as the deploy accepts them (`keyplan-<stage>` names every resource). */
const STAGE = /^[A-Za-z0-9-]{1,40}$/;

/** The function of a stage whose configuration a command reads unless it names another. */
export const CONFIGURATION_FUNCTION = 'register';

/**
 * Chooses the stack: `--stage NAME` (a deployed stack, its configuration read from its register
 * function, or the function `functionKey` names), else the environment when it names a table (as
 * a Lambda function's would), else the local stack `npm start` describes in .keyplan/local.json.
 * @throws UsageError, ConfigError; AWS errors of the configuration lookup pass unchanged
 */
export async function selectStack(
  request: { stage?: string | undefined; functionKey?: string | undefined },
  io: StackIo,
): Promise<Stack> {
  if (request.stage !== undefined) return deployedStack(request.stage, request.functionKey ?? CONFIGURATION_FUNCTION);
  if (io.env.TABLE_NAME) {
    const config = loadConfig(io.env);
    const region = io.env.AWS_REGION ?? io.env.AWS_DEFAULT_REGION ?? 'the default region';
    return { config, description: `the environment: table ${config.tableName} in ${region}`, local: false };
  }
  return localStack(io);
}

/** A deployed function's name, as the framework names it: service, stage, function key (serverless.yml). */
export const deployedFunctionName = (stage: string, functionKey: string) => `keyplan-${stage}-${functionKey}`;

/**
 * Every function of a stage gets the same configuration (serverless.yml `provider.environment`);
 * `register` also has QUEUE_URL, which asynchronous provisioning and import need, and a scheduled
 * job's function its batch size.
 */
async function deployedStack(stage: string, functionKey: string): Promise<Stack> {
  if (!STAGE.test(stage)) throw new UsageError(`--stage must be letters, digits and -, got "${stage}"`);
  const functionName = deployedFunctionName(stage, functionKey);
  // The caller's credentials and region, as for every other client; the SDK's own settings decide
  // the endpoint (AWS_ENDPOINT_URL and friends).
  const lambda = new LambdaClient({});
  try {
    const region = await lambda.config.region().catch(() => {
      throw new ConfigError('no AWS region for --stage: set AWS_REGION, or a region in your AWS profile');
    });
    const response = await lambda
      .send(new GetFunctionConfigurationCommand({ FunctionName: functionName }))
      .catch((error: unknown) => {
        if (awsErrorName(error) !== 'ResourceNotFoundException') throw error;
        throw new ConfigError(
          `there is no function ${functionName} in ${region}: is stage "${stage}" deployed there? ` +
            '(the region comes from AWS_REGION or your AWS profile)',
        );
      });
    let config: Config;
    try {
      config = loadConfig(response.Environment?.Variables ?? {});
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new ConfigError(`the configuration of ${functionName} is not keyplan's: ${error.message}`);
    }
    return { config, description: `stage ${stage}: table ${config.tableName} in ${region}`, local: false };
  } finally {
    lambda.destroy();
  }
}

async function localStack(io: StackIo): Promise<Stack> {
  const found = await findUp(io.cwd, LOCAL_STACK_FILE);
  if (!found) {
    throw new ConfigError(
      `TABLE_NAME is not set and there is no ${LOCAL_STACK_FILE}: run \`npm start\` for the local stack, ` +
        'pass --stage NAME for a deployed one, or export TABLE_NAME, TIER_MAP, SENDER_EMAIL and QUEUE_URL',
    );
  }
  const shown = relative(io.cwd, found.path) || LOCAL_STACK_FILE;
  let stack;
  try {
    stack = validate(localStackSchema, JSON.parse(found.text));
  } catch {
    throw new ConfigError(`${shown} is not a local stack description: run \`npm start\` again`);
  }
  // The SDK takes the endpoint and credentials from the environment, so the local stack goes there.
  Object.assign(io.env, functionEnvironment(stack));
  const config = loadConfig(io.env);
  return {
    config,
    description: `the local stack (${shown}): table ${config.tableName} at ${stack.endpoint}`,
    local: true,
  };
}

/** The file in `from` or the nearest folder above it, like git finds its repository. */
async function findUp(from: string, file: string): Promise<{ path: string; text: string } | undefined> {
  for (let folder = from; ; folder = dirname(folder)) {
    const path = join(folder, file);
    try {
      return { path, text: await readFile(path, 'utf8') };
    } catch {
      // Not here; look in the parent.
    }
    if (dirname(folder) === folder) return undefined;
  }
}
