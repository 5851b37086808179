import { execFile, execFileSync } from 'node:child_process';
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isScalar, isSeq, parse, parseDocument } from 'yaml';

/**
 * Packages the service the way a deploy would (osls + serverless-esbuild) and reads the result:
 * the CloudFormation template and the function zip. No AWS account is involved: the packaging
 * runs with every AWS_* variable removed and no shared config, which is also the proof that it
 * needs none.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE_TIMEOUT_MS = 180_000;
const PROD_ROTATION_SCHEDULE = 'cron(30 4 ? * MON *)';
const PROD_BILLING_SOURCE = 'billing.prod.example';
const PROD_RECONCILE_SCHEDULE = 'rate(12 hours)';
const MAX_ZIP_BYTES = 2 * 1024 * 1024;
// Both tools take a few seconds on the two templates; the budget catches a run that starts to wait
// on something (a network call, a hung check) long before the test's own timeout would.
const TOOL_TIMEOUT_MS = 50_000;
const TOOL_BUDGET_SECONDS = 30;
const CHECKOV_CONFIG = 'infra/checkov.yaml';
const CFN_LINT_CONFIG = 'infra/.cfnlintrc.yaml';

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
  DeletionPolicy?: string;
  Condition?: string;
}
interface Template {
  Resources: Record<string, Resource>;
  Conditions?: Record<string, unknown>;
}
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}
interface Packaged {
  /** the copy of the service that was packaged */
  dir: string;
  /** its .serverless/: template and zips */
  output: string;
  template: Template;
}

const tiers = Object.keys(
  (JSON.parse(readFileSync(join(root, 'infra/tiers.json'), 'utf8')) as { tiers: object }).tiers,
);
const table = JSON.parse(readFileSync(join(root, 'infra/table.json'), 'utf8')) as {
  TimeToLiveAttribute: string;
};
const config = parse(readFileSync(join(root, 'serverless.yml'), 'utf8'), {
  logLevel: 'silent',
}) as { service: string; params: Record<string, Record<string, unknown>> };

function paramsOf(stage: string): Record<string, unknown> {
  return { ...config.params.default, ...config.params[stage] };
}

function awsFreeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('AWS_')) env[name] = value;
  }
  // Point the SDK's shared files at nothing, so a developer's ~/.aws cannot help either.
  env.AWS_CONFIG_FILE = join(tmpdir(), 'keyplan-no-aws-config');
  env.AWS_SHARED_CREDENTIALS_FILE = join(tmpdir(), 'keyplan-no-aws-credentials');
  return env;
}

/**
 * Packages a copy of the service: osls treats <service>/.serverless as scratch space (it empties
 * it even with --package), so packaging in place would destroy a developer's own build and race
 * with a concurrent `npm run package`. Dot-directories (.git, .serverless, the emulator's
 * virtualenv) stay behind; node_modules is linked, not copied.
 */
function packageStage(stage: string, extraArgs: string[] = [], files: Record<string, string> = {}): Packaged {
  const dir = mkdtempSync(join(tmpdir(), `keyplan-package-${stage}-`));
  cpSync(root, dir, {
    recursive: true,
    filter: (source) => {
      const top = relative(root, source).split(sep)[0] ?? '';
      return !top.startsWith('.') && top !== 'node_modules' && top !== 'coverage';
    },
  });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/osls/bin/serverless.js'), 'package', '--stage', stage, ...extraArgs],
    { cwd: dir, env: awsFreeEnv(), stdio: 'pipe', timeout: PACKAGE_TIMEOUT_MS },
  );
  const output = join(dir, '.serverless');
  const template = JSON.parse(
    readFileSync(join(output, 'cloudformation-template-update-stack.json'), 'utf8'),
  ) as Template;
  return { dir, output, template };
}

function resourcesOfType(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

function asArray<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

/** A policy resource as text: plain ARN, Fn::Sub pattern, or the intrinsic as JSON. */
function resourceText(resource: unknown): string {
  if (typeof resource === 'string') return resource;
  const sub = (resource as { 'Fn::Sub'?: unknown })['Fn::Sub'];
  return typeof sub === 'string' ? sub : JSON.stringify(resource);
}

function resourceNamed(template: Template, logicalId: string, type: string): Resource {
  const found = template.Resources[logicalId];
  if (found?.Type !== type) throw new Error(`template has no ${type} named ${logicalId}`);
  return found;
}

function roleStatements(template: Template, roleId: string): Statement[] {
  const policies = resourceNamed(template, roleId, 'AWS::IAM::Role').Properties.Policies as {
    PolicyDocument: { Statement: Statement[] };
  }[];
  return policies.flatMap((policy) => policy.PolicyDocument.Statement);
}

/** Every (action, resource) pair the statements allow, as "action resource" strings. */
function grants(statements: Statement[], service: string): string[] {
  return statements.flatMap((statement) =>
    asArray(statement.Action)
      .filter((action) => action.startsWith(`${service}:`))
      .flatMap((action) =>
        asArray(statement.Resource).map((resource) => `${action} ${resourceText(resource)}`),
      ),
  );
}

/** As grants(), each with the condition its statement puts on it: "action resource if {condition}". */
function conditionalGrants(statements: Statement[], service: string): string[] {
  return statements.flatMap((statement) =>
    grants([statement], service).map((grant) =>
      statement.Condition ? `${grant} if ${JSON.stringify(statement.Condition)}` : grant,
    ),
  );
}

/** Entry names from a zip's central directory; enough to check contents without a zip library. */
function zipEntries(path: string): string[] {
  const zip = readFileSync(path);
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error(`${path} is not a zip`);
  const count = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    names.push(zip.toString('utf8', offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}

/** One file of a zip (stored or deflated), found through the central directory. */
function zipEntry(path: string, wanted: string): Buffer {
  const zip = readFileSync(path);
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  let offset = zip.readUInt32LE(end + 16);
  for (let i = 0; i < zip.readUInt16LE(end + 10); i += 1) {
    const nameLength = zip.readUInt16LE(offset + 28);
    if (zip.toString('utf8', offset + 46, offset + 46 + nameLength) === wanted) {
      const method = zip.readUInt16LE(offset + 10);
      const size = zip.readUInt32LE(offset + 20);
      const local = zip.readUInt32LE(offset + 42);
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      return method === 8 ? inflateRawSync(data) : Buffer.from(data);
    }
    offset += 46 + nameLength + zip.readUInt16LE(offset + 30) + zip.readUInt16LE(offset + 32);
  }
  throw new Error(`${path} holds no ${wanted}`);
}

/**
 * What each AWS operation our code sends needs in IAM: the action, and for API Gateway's
 * management API (authorized as HTTP verbs on resource paths) the path, with ids as `*`. Keyed by
 * the command class without "Command" (lib-dynamodb's document commands are Get, Put, ...).
 */
const IAM_OF_OPERATION: Record<string, string[]> = {
  Get: ['dynamodb:GetItem'],
  Put: ['dynamodb:PutItem'],
  Update: ['dynamodb:UpdateItem'],
  Delete: ['dynamodb:DeleteItem'],
  Query: ['dynamodb:Query'],
  BatchGet: ['dynamodb:BatchGetItem'],
  // Authorized per item: a condition check, put, update or delete.
  TransactWrite: ['dynamodb:ConditionCheckItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
  // Tag-on-create is a PUT on the new key's tags.
  CreateApiKey: ['apigateway:POST /apikeys', 'apigateway:PUT /tags/*'],
  GetApiKeys: ['apigateway:GET /apikeys'],
  GetApiKey: ['apigateway:GET /apikeys/*'],
  UpdateApiKey: ['apigateway:PATCH /apikeys/*'],
  DeleteApiKey: ['apigateway:DELETE /apikeys/*'],
  CreateUsagePlanKey: ['apigateway:POST /usageplans/*/keys'],
  GetUsagePlanKeys: ['apigateway:GET /usageplans/*/keys'],
  GetUsagePlanKey: ['apigateway:GET /usageplans/*/keys/*'],
  DeleteUsagePlanKey: ['apigateway:DELETE /usageplans/*/keys/*'],
  GetUsagePlan: ['apigateway:GET /usageplans/*'],
  GetUsage: ['apigateway:GET /usageplans/*/usage'],
  SendEmail: ['ses:SendEmail'],
  SendMessage: ['sqs:SendMessage'],
  PutEvents: ['events:PutEvents'],
};

/**
 * The operations the function's own code can send: `new <Operation>Command(` and lib-dynamodb's
 * paginateQuery, in every source file of ours that its source map says the bundle holds. Module
 * granularity over-approximates (a bundled adapter brings all its methods), never under.
 */
function operationsOfBundle(zip: string, handlerFile: string): { operations: Set<string>; sources: string[] } {
  const map = JSON.parse(zipEntry(zip, `${handlerFile}.mjs.map`).toString('utf8')) as { sources: string[] };
  const sources = map.sources
    .filter((source) => !source.includes('node_modules'))
    .map((source) => /(?:^|\/)((?:shared|functions)\/.*\.ts)$/.exec(source)?.[1])
    .filter((source): source is string => source !== undefined);
  const operations = new Set<string>();
  for (const source of sources) {
    const text = readFileSync(join(root, source), 'utf8');
    for (const match of text.matchAll(/new (\w+)Command\(/g)) operations.add(String(match[1]));
    if (/\bpaginateQuery\(/.test(text)) operations.add('Query');
  }
  return { operations, sources };
}

/** A grant as IAM_OF_OPERATION writes it: API Gateway ARNs as "verb path", plan and key ids as *. */
function normalizedGrant(grant: string): string {
  const [action = '', resource = ''] = grant.split(' ');
  if (!action.startsWith('apigateway:')) return action;
  const path = resource.slice(resource.indexOf('::/') + 2).replace(/\$\{[^}]+\}/g, '*');
  return `${action} ${path.startsWith('/tags/') ? '/tags/*' : path}`;
}

/** One run of a tool from the project virtualenv (scripts/setup.mjs). */
interface ToolRun {
  tool: string;
  /** The exit status; a string when the tool did not start (ENOENT) or was killed (the signal). */
  status: number | string;
  stdout: string;
  stderr: string;
  seconds: number;
}

const venvBin = join(root, '.keyplan/venv', process.platform === 'win32' ? 'Scripts' : 'bin');

/**
 * Runs a tool of the venv without network access and without AWS variables. Resolves even when the
 * tool fails, so that the test can show what it said.
 */
function runTool(tool: string, args: string[]): Promise<ToolRun> {
  const env: NodeJS.ProcessEnv = {
    ...awsFreeEnv(),
    // checkov asks PyPI for a newer version at start-up (weekly, cached in ~/.cache/checkov).
    CKV_SKIP_PACKAGE_UPDATE_CHECK: 'true',
    // No check-id mapping from the Prisma Cloud platform; --skip-download in the config says so too.
    BC_SKIP_MAPPING: 'TRUE',
  };
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      join(venvBin, tool),
      args,
      { cwd: root, env, timeout: TOOL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const status = error ? (error.code ?? error.signal ?? 'failed') : 0;
        resolve({ tool, status, stdout, stderr, seconds: (performance.now() - started) / 1000 });
      },
    );
  });
}

/** The tool's report as JSON, or undefined when it wrote none (it crashed or did not start). */
function reportOf<T>(run: ToolRun): T | undefined {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    return undefined;
  }
}

const noReport = (run: ToolRun) =>
  `${run.tool} wrote no report (exit ${String(run.status)} after ${run.seconds.toFixed(1)} s): ` +
  run.stderr.slice(-2000);

/** 'exit 0', or the status with what the tool said on stderr, for the failure message. */
const exitOf = (run: ToolRun) =>
  run.status === 0 ? 'exit 0' : `${run.tool} exit ${String(run.status)}: ${run.stderr.slice(-2000)}`;

interface CfnLintMatch {
  Filename: string;
  Level: string;
  Message: string;
  Rule: { Id: string };
  Location: { Path: (string | number)[] };
}

/** cfn-lint's findings, one line each: which stage, which rule, where in the template, what. */
function cfnLintFindings(run: ToolRun, stageOf: (file: string) => string): string[] {
  const matches = reportOf<CfnLintMatch[]>(run);
  if (!Array.isArray(matches)) return [noReport(run)];
  return matches.map((match) => {
    const where = match.Location.Path.join('/');
    return `${stageOf(match.Filename)}: ${match.Rule.Id} (${match.Level}) at ${where}: ${match.Message}`;
  });
}

interface CheckovReport {
  check_type: string;
  results: { failed_checks: { check_id: string; check_name: string; resource: string; file_abs_path: string }[] };
  summary: { passed: number; failed: number; parsing_errors: number; resource_count: number };
}

/** checkov's report; one per framework, and only cloudformation runs. */
function checkovReport(run: ToolRun): CheckovReport | undefined {
  const report = reportOf<CheckovReport | CheckovReport[]>(run);
  const reports = report === undefined ? [] : Array.isArray(report) ? report : [report];
  return reports.find((candidate) => candidate.check_type === 'cloudformation');
}

/** The rule ids a tool's config skips, each with the reason written on its line. */
function skippedRules(configFile: string, key: string): [string, string][] {
  const list = parseDocument(readFileSync(join(root, configFile), 'utf8')).get(key);
  if (!isSeq(list)) throw new Error(`${configFile} has no list ${key}`);
  return list.items.map((item) => {
    if (!isScalar(item)) throw new Error(`${configFile}: ${key} holds something other than rule ids`);
    return [String(item.value), (item.comment ?? '').trim()];
  });
}

/** The queue trigger(s) of a function. */
function mappingsOf(template: Template, functionId: string): Resource[] {
  return resourcesOfType(template, 'AWS::Lambda::EventSourceMapping')
    .filter(
      ([, mapping]) =>
        JSON.stringify(mapping.Properties.FunctionName) === JSON.stringify(getAtt(functionId, 'Arn')),
    )
    .map(([, mapping]) => mapping);
}

/** The REST routes a function serves, as [method, path, authorization type]. */
function routesOf(template: Template, functionId: string): [unknown, string, unknown][] {
  const resources = resourcesOfType(template, 'AWS::ApiGateway::Resource');
  const pathOf = (logicalId: string): string => {
    const resource = resources.find(([id]) => id === logicalId)?.[1];
    if (!resource) return '';
    const parent = (resource.Properties.ParentId as { Ref?: string }).Ref ?? '';
    return `${pathOf(parent)}/${String(resource.Properties.PathPart)}`;
  };
  return resourcesOfType(template, 'AWS::ApiGateway::Method')
    .filter(([, method]) =>
      JSON.stringify(method.Properties.Integration).includes(JSON.stringify(getAtt(functionId, 'Arn'))),
    )
    .map(([, method]) => [
      method.Properties.HttpMethod,
      pathOf((method.Properties.ResourceId as { Ref: string }).Ref),
      method.Properties.AuthorizationType,
    ]);
}

function environmentOf(template: Template, functionId: string): Record<string, unknown> {
  return (
    resourceNamed(template, functionId, 'AWS::Lambda::Function').Properties.Environment as {
      Variables: Record<string, unknown>;
    }
  ).Variables;
}

const apiGateway = (path: string) => `arn:\${AWS::Partition}:apigateway:\${AWS::Region}::${path}`;
const getAtt = (logicalId: string, attribute: string) => ({ 'Fn::GetAtt': [logicalId, attribute] });
const WORKER = 'ProvisionWorkerLambdaFunction';
const ROTATE_KEYS = 'RotateKeysLambdaFunction';
const RETIRE_KEYS = 'RetireKeysLambdaFunction';
const ROTATE_CUSTOMER = 'RotateCustomerLambdaFunction';
const CHANGE_TIER = 'ChangeTierLambdaFunction';
const CHANGE_TIER_EVENTS = 'ChangeTierEventsLambdaFunction';
const REVOKE_CUSTOMER = 'RevokeCustomerLambdaFunction';
const CUSTOMER_USAGE = 'CustomerUsageLambdaFunction';
const RECONCILE = 'ReconcileLambdaFunction';
const RESUME = 'ResumeRegistrationsLambdaFunction';
const FINISH = 'FinishOperationsLambdaFunction';
const CUSTOMER_READS = 'CustomerReadsLambdaFunction';
const PUBLISH_EVENTS = 'PublishEventsLambdaFunction';
/** Every function of the service, and the role it runs with. */
const FUNCTIONS: Record<string, string> = {
  RegisterLambdaFunction: 'RegisterRole',
  [WORKER]: 'ProvisionWorkerRole',
  [ROTATE_KEYS]: 'RotateKeysRole',
  [RETIRE_KEYS]: 'RetireKeysRole',
  [ROTATE_CUSTOMER]: 'RotateCustomerRole',
  [CHANGE_TIER]: 'ChangeTierRole',
  [CHANGE_TIER_EVENTS]: 'ChangeTierEventsRole',
  [REVOKE_CUSTOMER]: 'RevokeCustomerRole',
  [CUSTOMER_USAGE]: 'CustomerUsageRole',
  [RECONCILE]: 'ReconcileRole',
  [RESUME]: 'ResumeRegistrationsRole',
  [FINISH]: 'FinishOperationsRole',
  [CUSTOMER_READS]: 'CustomerReadsRole',
  [PUBLISH_EVENTS]: 'PublishEventsRole',
};
/** The functions that make no API Gateway management call (management-budget.js's WITHOUT_MANAGEMENT_CALLS). */
const WITHOUT_MANAGEMENT_CALLS = [PUBLISH_EVENTS, CUSTOMER_READS];
const QUEUE = 'ProvisioningQueue';
const DLQ = 'ProvisioningDeadLetterQueue';
const TIER_QUEUE = 'TierChangesQueue';
const TIER_DLQ = 'TierChangesDeadLetterQueue';
const PLAN_CHANGED_RULE = 'PlanChangedRule';
const EVENTS_DLQ = 'LifecycleEventsDeadLetterQueue';
const TABLE_STREAM = getAtt('KeyplanTable', 'StreamArn');
/** The saga's configuration, which every function reads (shared/config.ts). */
const SAGA_SETTINGS = [
  'TABLE_NAME',
  'TIER_MAP',
  'SENDER_EMAIL',
  'SES_CONFIGURATION_SET',
  'ROTATION_DAYS',
  'GRACE_DAYS',
  'REMINDER_DAYS',
  'KEY_RETENTION_DAYS',
  'KEY_NAME_PREFIX',
];


/** The EventBridge rules that invoke a function, with the permission that lets them. */
function schedulesOf(template: Template, functionId: string): string[] {
  const target = getAtt(functionId, 'Arn');
  const rules = resourcesOfType(template, 'AWS::Events::Rule').filter(([, rule]) =>
    (rule.Properties.Targets as { Arn: unknown }[]).some((t) => JSON.stringify(t.Arn) === JSON.stringify(target)),
  );
  for (const [ruleId, rule] of rules) {
    expect(rule.Properties.State).toBe('ENABLED');
    expect(rule.Properties.Targets).toHaveLength(1);
    const permissions = resourcesOfType(template, 'AWS::Lambda::Permission').filter(
      ([, permission]) => JSON.stringify(permission.Properties.SourceArn) === JSON.stringify(getAtt(ruleId, 'Arn')),
    );
    expect(permissions.map(([, permission]) => permission.Properties)).toEqual([
      {
        FunctionName: target,
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        SourceArn: getAtt(ruleId, 'Arn'),
      },
    ]);
  }
  return rules.map(([, rule]) => String(rule.Properties.ScheduleExpression));
}

/** The function exists in the template with its handler and timeout, on Node 22 / arm64. */
function expectFunction(template: Template, functionId: string, handler: string, timeout: number): void {
  expect(resourceNamed(template, functionId, 'AWS::Lambda::Function').Properties).toMatchObject({
    Handler: handler,
    Runtime: 'nodejs22.x',
    Architectures: ['arm64'],
    Timeout: timeout,
    MemorySize: 512,
  });
}

/** prod spreads its customers over two shards: its own account and Region, and another account's. */
const PROD_SHARD_ROLE = 'arn:aws:iam::222222222222:role/keyplan-shard-prod-eu-west-1';
const PROD_SHARDS = [
  { id: 'home', baseUrl: 'https://api.example.com/v1' },
  {
    id: 'eu1',
    region: 'eu-west-1',
    roleArn: PROD_SHARD_ROLE,
    externalId: 'keyplan-prod-external-id',
    baseUrl: 'https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1',
    plans: { free: 'p1free', basic: 'p1basic', pro: 'p1pro' },
  },
];

describe('packaged deployment (osls package, offline)', () => {
  let dev: Packaged;
  let prod: Packaged;
  // The static analysis of both templates, started as soon as they exist, side by side.
  let cfnLint: Promise<ToolRun>;
  let checkov: Promise<ToolRun>;

  const templateOf = (packaged: Packaged) => join(packaged.output, 'cloudformation-template-update-stack.json');
  /** Which package a tool's file name is in (the temp directories have unique names). */
  const stageOf = (file: string): string => {
    if (file.includes(basename(dev.dir))) return 'dev';
    if (file.includes(basename(prod.dir))) return 'prod';
    return file;
  };

  beforeAll(() => {
    dev = packageStage('dev');
    // prod with a customer API stage, an alarm address, its own schedules and billing event
    // source, to see the protected, attached, subscribed and rescheduled variants too.
    prod = packageStage('prod', [
      '--param=apiId=a1b2c3d4e5',
      '--param=apiStage=v1',
      '--param=alarmEmail=ops@example.com',
      `--param=rotationSchedule=${PROD_ROTATION_SCHEDULE}`,
      `--param=reconcileSchedule=${PROD_RECONCILE_SCHEDULE}`,
      `--param=billingEventSource=${PROD_BILLING_SOURCE}`,
    ], { 'infra/shards.json': JSON.stringify({ shards: PROD_SHARDS }) });
    const templates = [templateOf(dev), templateOf(prod)];
    cfnLint = runTool('cfn-lint', ['--config-file', CFN_LINT_CONFIG, '--format', 'json', '--', ...templates]);
    checkov = runTool('checkov', [
      '--config-file',
      CHECKOV_CONFIG,
      '--quiet',
      '--output',
      'json',
      ...templates.flatMap((template) => ['--file', template]),
    ]);
  }, 2 * PACKAGE_TIMEOUT_MS);

  afterAll(async () => {
    // The tools read the templates: let them finish even if their tests did not run.
    await Promise.allSettled([cfnLint, checkov]);
    for (const packaged of [dev, prod]) {
      if (packaged) rmSync(packaged.dir, { recursive: true, force: true });
    }
  });

  describe('functions', () => {
    it('run on Node.js 22 on arm64', () => {
      const functions = resourcesOfType(dev.template, 'AWS::Lambda::Function');
      expect(functions.length).toBeGreaterThan(0);
      for (const [, fn] of functions) {
        expect(fn.Properties.Runtime).toBe('nodejs22.x');
        expect(fn.Properties.Architectures).toEqual(['arm64']);
      }
    });

    it('ship one zip per function, under 2 MB, holding the ESM handler and its source map', () => {
      const functions = resourcesOfType(dev.template, 'AWS::Lambda::Function');
      for (const [, fn] of functions) {
        const zipName = basename((fn.Properties.Code as { S3Key: string }).S3Key);
        expect(readdirSync(dev.output)).toContain(zipName);
        const zip = join(dev.output, zipName);
        expect(statSync(zip).size).toBeLessThan(MAX_ZIP_BYTES);
        // The runtime resolves "<file>.<export>" as <file>.js, then .mjs, then .cjs.
        const file = String(fn.Properties.Handler).replace(/\.[^.]+$/, '');
        expect(zipEntries(zip)).toEqual(expect.arrayContaining([`${file}.mjs`, `${file}.mjs.map`]));
      }
    });

    // Each function's composition (functions/<name>/composition.ts) builds only the clients its
    // use cases call, so its bundle holds only those SDK clients (read from the shipped source map).
    it('bundle only the AWS SDK clients their use cases call', () => {
      const saga = ['client-api-gateway', 'client-dynamodb', 'client-ses'];
      const keysAndTable = ['client-api-gateway', 'client-dynamodb'];
      const expected: Record<string, string[]> = {
        RegisterLambdaFunction: [...saga, 'client-sqs'],
        [WORKER]: saga,
        [ROTATE_KEYS]: saga,
        [RETIRE_KEYS]: saga,
        [ROTATE_CUSTOMER]: saga,
        [RESUME]: saga,
        [FINISH]: saga,
        [RECONCILE]: keysAndTable,
        [CHANGE_TIER]: keysAndTable,
        [CHANGE_TIER_EVENTS]: keysAndTable,
        [REVOKE_CUSTOMER]: keysAndTable,
        [CUSTOMER_USAGE]: keysAndTable,
        // The read routes: the table alone.
        [CUSTOMER_READS]: ['client-dynamodb'],
        // The stream's records come with the invocation: EventBridge alone.
        [PUBLISH_EVENTS]: ['client-eventbridge'],
      };
      const clientsOf = (functionId: string) => {
        const fn = resourceNamed(dev.template, functionId, 'AWS::Lambda::Function');
        const zip = join(dev.output, basename((fn.Properties.Code as { S3Key: string }).S3Key));
        const file = String(fn.Properties.Handler).replace(/\.[^.]+$/, '');
        const map = JSON.parse(zipEntry(zip, `${file}.mjs.map`).toString('utf8')) as { sources: string[] };
        const clients = map.sources.map((source) => /node_modules\/@aws-sdk\/(client-[a-z0-9-]+)\//.exec(source)?.[1]);
        return [...new Set(clients.filter((client): client is string => client !== undefined))].sort();
      };
      expect(Object.keys(expected).sort()).toEqual(Object.keys(FUNCTIONS).sort());
      expect(Object.fromEntries(Object.keys(expected).map((id) => [id, clientsOf(id)]))).toEqual(expected);
    });

    it('give register its configuration, with TIER_MAP naming every tier', () => {
      const variables = environmentOf(dev.template, 'RegisterLambdaFunction');
      expect(variables.TABLE_NAME).toEqual({ Ref: 'KeyplanTable' });
      expect(variables.KEY_NAME_PREFIX).toBe('keyplan-dev');
      expect(variables.SENDER_EMAIL).toBe(paramsOf('dev').senderEmail);
      expect(variables.NODE_OPTIONS).toBe('--enable-source-maps');
      const tierMap = JSON.parse((variables.TIER_MAP as { 'Fn::Sub': string })['Fn::Sub']) as Record<
        string,
        string
      >;
      expect(Object.keys(tierMap).sort()).toEqual([...tiers].sort());
      for (const ref of Object.values(tierMap)) {
        const id = /^\$\{(\w+)\}$/.exec(ref)?.[1];
        expect(dev.template.Resources[id ?? '']?.Type).toBe('AWS::ApiGateway::UsagePlan');
      }
    });

    it('give register the provisioning queue, for Prefer: respond-async', () => {
      expect(environmentOf(dev.template, 'RegisterLambdaFunction').QUEUE_URL).toEqual({ Ref: QUEUE });
    });

    it('give every function the saga configuration of register', () => {
      const saga = (functionId: string) => {
        const variables = environmentOf(dev.template, functionId);
        return Object.fromEntries(SAGA_SETTINGS.map((name) => [name, variables[name]]));
      };
      const register = saga('RegisterLambdaFunction');
      expect(Object.values(register)).not.toContain(undefined);
      expect(register).toMatchObject({
        REMINDER_DAYS: String(paramsOf('dev').reminderDays),
        KEY_RETENTION_DAYS: String(paramsOf('dev').keyRetentionDays),
      });
      for (const functionId of Object.keys(FUNCTIONS)) {
        expect(saga(functionId)).toEqual(register);
      }
    });

    it.each([
      ['dev', () => dev],
      ['prod', () => prod],
    ])('in %s give every function its stage, the value of the keyplan:stage tag its role requires', (stage, get) => {
      for (const functionId of Object.keys(FUNCTIONS)) {
        expect(environmentOf(get().template, functionId).STAGE).toBe(stage);
      }
    });

    // A customer's lease is per operation (renewed at half time, checked before each side effect):
    // one length for every function, long enough for an AWS call with the SDK's retries. The
    // sweep's period is what a customer whose operation died waits, and Retry-After says so.
    it('give every function the same customer lease and the sweep period the resume schedule runs at', () => {
      const functions = resourcesOfType(dev.template, 'AWS::Lambda::Function');
      expect(functions.map(([logicalId]) => logicalId).sort()).toEqual(Object.keys(FUNCTIONS).sort());
      const leases = new Set(functions.map(([logicalId]) => Number(environmentOf(dev.template, logicalId).LEASE_SECONDS)));
      expect([...leases]).toEqual([90]);
      const sweeps = new Set(functions.map(([logicalId]) => environmentOf(dev.template, logicalId).SWEEP_MINUTES));
      expect([...sweeps]).toEqual(['5']);
      const schedules = resourcesOfType(dev.template, 'AWS::Events::Rule').map(([, rule]) => rule.Properties.ScheduleExpression);
      expect(schedules).toContain('rate(5 minutes)');
    });

    it('use the per-function role, not the framework-wide one', () => {
      for (const [functionId, roleId] of Object.entries(FUNCTIONS)) {
        const fn = resourceNamed(dev.template, functionId, 'AWS::Lambda::Function');
        expect(fn.Properties.Role).toEqual(getAtt(roleId, 'Arn'));
      }
      expect(dev.template.Resources.IamRoleLambdaExecution).toBeUndefined();
    });
  });

  // One API Gateway management budget for the account (DESIGN §7; infra/serverless/management-budget.js):
  // every function that calls API Gateway runs at most `cap` containers and each paces itself to
  // MANAGEMENT_SHARE_PER_SECOND / cap, so the shares must add up to at most the budget.
  // infra/shards.json: dev has none (one shard, as before shards), prod two (docs/capacity.md).
  describe('shards', () => {
    const roles = (template: Template) => resourcesOfType(template, 'AWS::IAM::Role').map(([logicalId]) => logicalId);
    const callsApiGateway = (template: Template, roleId: string) =>
      roleStatements(template, roleId).some((statement) => asArray(statement.Action).some((action) => action.startsWith('apigateway:')));
    const assumes = (template: Template, roleId: string) =>
      roleStatements(template, roleId).filter((statement) => asArray(statement.Action).includes('sts:AssumeRole'));

    it('one shard: no SHARDS setting and no role may assume another', () => {
      for (const [logicalId] of resourcesOfType(dev.template, 'AWS::Lambda::Function')) {
        // AWS::NoValue: CloudFormation leaves the setting out.
        expect(environmentOf(dev.template, logicalId).SHARDS).toEqual({ Ref: 'AWS::NoValue' });
      }
      for (const roleId of roles(dev.template)) expect(assumes(dev.template, roleId)).toEqual([]);
    });

    it('gives every function the shard list, and each function that calls API Gateway the shard roles, by name', () => {
      for (const [logicalId] of resourcesOfType(prod.template, 'AWS::Lambda::Function')) {
        expect(JSON.parse(String(environmentOf(prod.template, logicalId).SHARDS))).toEqual(PROD_SHARDS);
      }
      const apiGatewayRoles = roles(prod.template).filter((roleId) => callsApiGateway(prod.template, roleId));
      expect(apiGatewayRoles.length).toBeGreaterThan(5);
      for (const roleId of roles(prod.template)) {
        const expected = apiGatewayRoles.includes(roleId)
          ? [{ Sid: 'AssumeShardRoles', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: [PROD_SHARD_ROLE] }]
          : [];
        expect(assumes(prod.template, roleId)).toEqual(expected);
      }
    });

    // One provisioning queue per shard (docs/capacity.md): a worker batch holds one shard's
    // registrations, paced by that shard's budget alone, instead of waiting for its busiest shard.
    const EU1_QUEUE = 'ProvisioningEu1Queue';
    const EU1_DLQ = 'ProvisioningEu1DeadLetterQueue';

    it('one shard: one provisioning queue, no QUEUE_URLS setting', () => {
      expect(resourcesOfType(dev.template, 'AWS::SQS::Queue').map(([id]) => id).filter((id) => id.startsWith('Provisioning'))).toEqual([
        QUEUE,
        DLQ,
      ]);
      expect(environmentOf(dev.template, 'RegisterLambdaFunction').QUEUE_URLS).toEqual({ Ref: 'AWS::NoValue' });
    });

    it('gives each other shard a provisioning queue and DLQ of its own, with the home queue’s settings', () => {
      const home = resourceNamed(prod.template, QUEUE, 'AWS::SQS::Queue').Properties;
      const homeDlq = resourceNamed(prod.template, DLQ, 'AWS::SQS::Queue').Properties;
      const eu1 = resourceNamed(prod.template, EU1_QUEUE, 'AWS::SQS::Queue').Properties;
      const eu1Dlq = resourceNamed(prod.template, EU1_DLQ, 'AWS::SQS::Queue').Properties;

      expect(eu1).toEqual({
        ...home,
        QueueName: `${config.service}-prod-provisioning-eu1`,
        RedrivePolicy: { deadLetterTargetArn: getAtt(EU1_DLQ, 'Arn'), maxReceiveCount: 5 },
      });
      expect(eu1Dlq).toEqual({ ...homeDlq, QueueName: `${config.service}-prod-provisioning-eu1-dlq` });
      expect(resourcesOfType(prod.template, 'AWS::SQS::Queue').map(([id]) => id).filter((id) => id.startsWith('Provisioning')).sort()).toEqual(
        [QUEUE, DLQ, EU1_QUEUE, EU1_DLQ].sort(),
      );
    });

    it('alarms on the shard queue’s DLQ as on the home one’s', () => {
      const alarmOn = (dlqId: string) =>
        resourcesOfType(prod.template, 'AWS::CloudWatch::Alarm').find(
          ([, alarm]) => JSON.stringify(alarm.Properties.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: getAtt(dlqId, 'QueueName') }]),
        )?.[1].Properties;
      const { AlarmName: homeName, AlarmDescription: _home, Dimensions: _homeDimensions, ...homeAlarm } = alarmOn(DLQ) ?? {};
      const eu1 = alarmOn(EU1_DLQ);

      expect(homeName).toBe(`${config.service}-prod-provisioning-dlq-not-empty`);
      expect(eu1).toMatchObject({ ...homeAlarm, AlarmName: `${config.service}-prod-provisioning-eu1-dlq-not-empty` });
      expect(String(eu1?.AlarmDescription)).toContain(`${config.service}-prod-provisioning-eu1-dlq`);
      expect(String(eu1?.AlarmDescription)).toMatch(/StartMessageMoveTask/);
    });

    it('feeds the worker from each shard queue with the home trigger’s batch size and MaximumConcurrency', () => {
      const mappings = mappingsOf(prod.template, WORKER);
      const on = (queueId: string) =>
        mappings.find((mapping) => JSON.stringify(mapping.Properties.EventSourceArn) === JSON.stringify(getAtt(queueId, 'Arn')));
      const { EventSourceArn: _home, ...homeTrigger } = on(QUEUE)?.Properties ?? {};

      expect(mappings).toHaveLength(2);
      expect(homeTrigger).toMatchObject({ BatchSize: 10, MaximumBatchingWindowInSeconds: 1, ScalingConfig: { MaximumConcurrency: 2 } });
      expect(on(EU1_QUEUE)?.Properties).toEqual({ ...homeTrigger, EventSourceArn: getAtt(EU1_QUEUE, 'Arn') });
      const dependsOn = (queueId: string) => (on(queueId) as { DependsOn?: unknown } | undefined)?.DependsOn;
      expect(dependsOn(EU1_QUEUE)).toEqual(dependsOn(QUEUE));
    });

    it('lets register send to every shard queue and the worker consume each, nothing more', () => {
      const queues = [getAtt(QUEUE, 'Arn'), getAtt(EU1_QUEUE, 'Arn')];
      const sqsOf = (roleId: string) =>
        roleStatements(prod.template, roleId).filter((statement) => asArray(statement.Action).some((action) => action.startsWith('sqs:')));

      expect(sqsOf('RegisterRole')).toEqual([{ Sid: 'EnqueueRegistration', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queues }]);
      expect(sqsOf('ProvisionWorkerRole')).toEqual([
        {
          Sid: 'ConsumeProvisioningQueue',
          Effect: 'Allow',
          Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
          Resource: queues,
        },
      ]);
      // Only register enqueues: every other role's SQS grants are what they were with one shard.
      for (const roleId of resourcesOfType(prod.template, 'AWS::IAM::Role').map(([id]) => id)) {
        if (roleId === 'RegisterRole' || roleId === 'ProvisionWorkerRole') continue;
        expect(JSON.stringify(sqsOf(roleId))).not.toContain(EU1_QUEUE);
      }
    });

    it('tells register each other shard’s queue (QUEUE_URLS), the home one staying QUEUE_URL', () => {
      const variables = environmentOf(prod.template, 'RegisterLambdaFunction');

      expect(variables.QUEUE_URL).toEqual({ Ref: QUEUE });
      expect(variables.QUEUE_URLS).toEqual({ 'Fn::Sub': JSON.stringify({ eu1: `\${${EU1_QUEUE}}` }) });
    });

    it('alarms on each shard’s key count before its high-water mark', () => {
      const alarms = resourcesOfType(prod.template, 'AWS::CloudWatch::Alarm')
        .map(([, alarm]) => alarm.Properties)
        .filter((alarm) => (alarm.Dimensions as { Name: string }[]).some((dimension) => dimension.Name === 'shard'));
      expect(alarms.map((alarm) => [alarm.MetricName, alarm.Dimensions, alarm.Threshold])).toEqual(
        PROD_SHARDS.map((shard) => [
          'AccountKeyCount',
          [
            { Name: 'service', Value: 'keyplan-prod' },
            { Name: 'shard', Value: shard.id },
          ],
          7000,
        ]),
      );
      expect(resourcesOfType(dev.template, 'AWS::CloudWatch::Alarm').filter(([id]) => id.includes('Shard'))).toEqual([]);
    });
  });

  describe('management budget', () => {
    const callsApiGateway = (template: Template, functionId: string) =>
      grants(roleStatements(template, FUNCTIONS[functionId] ?? ''), 'apigateway').length > 0;
    /**
     * The most containers of a function at once: its reserved concurrency, or for a function fed by
     * queues only, the sum of its triggers' MaximumConcurrency (a trigger without one is no cap).
     */
    const capOf = (template: Template, functionId: string): number => {
      const reserved = resourceNamed(template, functionId, 'AWS::Lambda::Function').Properties
        .ReservedConcurrentExecutions;
      if (reserved !== undefined) return Number(reserved);
      const mappings = mappingsOf(template, functionId);
      // Capped by its queues only if nothing else invokes it.
      const otherTriggers = routesOf(template, functionId).length + schedulesOf(template, functionId).length;
      if (mappings.length === 0 || otherTriggers > 0) return Number.POSITIVE_INFINITY;
      const caps = mappings.map(
        (mapping) =>
          (mapping.Properties.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency ??
          Number.POSITIVE_INFINITY,
      );
      // A shard's registrations are on its own provisioning queue only (one per shard), so a
      // shard's budget sees one trigger's containers at most: each trigger's cap is the one a
      // container paces by there (docs/capacity.md). Queues that are not one per shard add up.
      const perShard = mappings.every((mapping) =>
        /^Provisioning\w*Queue$/.test(String((mapping.Properties.EventSourceArn as { 'Fn::GetAtt'?: string[] })['Fn::GetAtt']?.[0])),
      );
      return perShard ? Math.max(...caps) : caps.reduce((sum, cap) => sum + cap, 0);
    };
    // CloudFormation environment values are strings; a missing one reads as NaN and fails below.
    const budgetOf = (template: Template, functionId: string) => {
      const variables = environmentOf(template, functionId);
      return {
        share: Number(variables.MANAGEMENT_SHARE_PER_SECOND),
        concurrency: Number(variables.MANAGEMENT_CONCURRENCY),
        burst: Number(variables.MANAGEMENT_BURST),
      };
    };
    const stages = [
      ['dev', () => dev],
      ['prod', () => prod],
    ] as const;

    // The functions that make no management call take none of the budget; a role with an API
    // Gateway grant may not claim to be one of them.
    const paced = () => Object.keys(FUNCTIONS).filter((functionId) => !WITHOUT_MANAGEMENT_CALLS.includes(functionId));

    it('applies to every function that calls API Gateway, which is every function but those without management calls', () => {
      expect(Object.keys(FUNCTIONS).filter((functionId) => callsApiGateway(dev.template, functionId)).sort()).toEqual(
        paced().sort(),
      );
    });

    it.each(stages)('in %s gives a function without management calls no share, cap or burst', (_, get) => {
      for (const functionId of WITHOUT_MANAGEMENT_CALLS) {
        const variables = environmentOf(get().template, functionId);
        expect(Object.keys(variables).filter((name) => name.startsWith('MANAGEMENT_') && name !== 'MANAGEMENT_CALLS_PER_SECOND')).toEqual([]);
        expect(resourceNamed(get().template, functionId, 'AWS::Lambda::Function').Properties.ReservedConcurrentExecutions).toBeUndefined();
      }
    });

    it.each(stages)('in %s gives every function that calls API Gateway a share, a cap and a burst', (_, get) => {
      const template = get().template;
      const problems = Object.keys(FUNCTIONS)
        .filter((functionId) => callsApiGateway(template, functionId))
        .flatMap((functionId) => {
          const { share, concurrency, burst } = budgetOf(template, functionId);
          const cap = capOf(template, functionId);
          return [
            share > 0 ? [] : [`${functionId}: share ${share}`],
            Number.isInteger(burst) && burst >= 1 ? [] : [`${functionId}: burst ${burst}`],
            // The cap it paces by is the cap Lambda enforces.
            Number.isInteger(cap) && cap >= 1 && cap === concurrency
              ? []
              : [`${functionId}: paces by ${concurrency} containers, Lambda allows ${cap}`],
          ].flat();
        });
      expect(problems).toEqual([]);
    });

    it.each(stages)('in %s keeps the shares of all functions within managementCallsPerSecond', (stage, get) => {
      const template = get().template;
      const budget = Number(paramsOf(stage).managementCallsPerSecond);
      expect(budget).toBeGreaterThan(0);
      expect(budget).toBeLessThanOrEqual(10);
      const functionIds = Object.keys(FUNCTIONS).filter((id) => callsApiGateway(template, id));
      const totals = functionIds.map((functionId) => environmentOf(template, functionId).MANAGEMENT_CALLS_PER_SECOND);
      expect(new Set(totals)).toEqual(new Set([String(budget)]));
      const sum = functionIds.reduce((total, functionId) => total + budgetOf(template, functionId).share, 0);
      expect(sum).toBeLessThanOrEqual(budget + 1e-9);
    });

    it('reserves a share for synchronous registrations, capped by reserved concurrency', () => {
      const register = budgetOf(dev.template, 'RegisterLambdaFunction');
      expect(register.share).toBeGreaterThan(0);
      expect(
        resourceNamed(dev.template, 'RegisterLambdaFunction', 'AWS::Lambda::Function').Properties
          .ReservedConcurrentExecutions,
      ).toBe(register.concurrency);
    });

    it("lets all containers start with a full bucket within the account's burst of 40", () => {
      const tokens = paced().reduce((sum, functionId) => {
        const { concurrency, burst } = budgetOf(dev.template, functionId);
        return sum + concurrency * burst;
      }, 0);
      expect(tokens).toBeLessThanOrEqual(40);
    });

    it('caps the queue consumers by their triggers, the other functions by reserved concurrency', () => {
      const capped = (functionId: string) =>
        resourceNamed(dev.template, functionId, 'AWS::Lambda::Function').Properties.ReservedConcurrentExecutions ===
        undefined
          ? 'by its queue'
          : 'reserved';
      const queueFed = (functionId: string) => mappingsOf(dev.template, functionId).length > 0;
      expect(Object.fromEntries(paced().map((id) => [id, capped(id)]))).toEqual(
        Object.fromEntries(paced().map((id) => [id, queueFed(id) ? 'by its queue' : 'reserved'])),
      );
      expect(mappingsOf(dev.template, CHANGE_TIER_EVENTS)[0]?.Properties.ScalingConfig).toEqual({
        MaximumConcurrency: budgetOf(dev.template, CHANGE_TIER_EVENTS).concurrency,
      });
    });
  });

  describe('provisioning worker', () => {
    const mappings = () => mappingsOf(dev.template, WORKER);

    it('exists with a 60 s timeout', () => {
      expectFunction(dev.template, WORKER, 'functions/provision-worker/handler.handler', 60);
    });

    it('is fed by the provisioning queue in batches, reporting partial failures', () => {
      expect(mappings()).toHaveLength(1);
      expect(mappings()[0]?.Properties).toMatchObject({
        EventSourceArn: getAtt(QUEUE, 'Arn'),
        FunctionName: getAtt(WORKER, 'Arn'),
        BatchSize: 10,
        MaximumBatchingWindowInSeconds: 1,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        Enabled: true,
      });
    });

    it('runs at most workerConcurrency containers, the number its share is divided by', () => {
      const concurrency = paramsOf('dev').workerConcurrency;
      expect(concurrency).toBe(2);
      expect(mappings()[0]?.Properties.ScalingConfig).toEqual({ MaximumConcurrency: concurrency });
      expect(environmentOf(dev.template, WORKER).MANAGEMENT_CONCURRENCY).toBe(String(concurrency));
    });
  });

  describe('rotation', () => {
    it.each([
      [ROTATE_KEYS, 'functions/rotate-keys/handler.handler', 300],
      [RETIRE_KEYS, 'functions/retire-keys/handler.handler', 300],
      [ROTATE_CUSTOMER, 'functions/rotate-customer/handler.handler', 28],
    ])('%s exists with its handler and timeout', (functionId, handler, timeout) => {
      expectFunction(dev.template, functionId, handler, timeout);
    });

    it('gives each job its batch size, and only that job', () => {
      const batchSizes = (functionId: string) => {
        const variables = environmentOf(dev.template, functionId);
        return [variables.ROTATION_BATCH_SIZE, variables.RETIREMENT_BATCH_SIZE];
      };
      expect(batchSizes(ROTATE_KEYS)).toEqual([String(paramsOf('dev').rotationBatchSize), undefined]);
      expect(batchSizes(RETIRE_KEYS)).toEqual([undefined, String(paramsOf('dev').retirementBatchSize)]);
      for (const functionId of ['RegisterLambdaFunction', WORKER, ROTATE_CUSTOMER, RECONCILE, RESUME, FINISH, CUSTOMER_READS]) {
        expect(batchSizes(functionId)).toEqual([undefined, undefined]);
      }
    });

    it('runs rotateKeys daily and retireKeys hourly by default, from EventBridge rules', () => {
      expect(paramsOf('dev').rotationSchedule).toBe('cron(0 3 * * ? *)');
      expect(paramsOf('dev').retirementSchedule).toBe('rate(1 hour)');
      expect(schedulesOf(dev.template, ROTATE_KEYS)).toEqual(['cron(0 3 * * ? *)']);
      expect(schedulesOf(dev.template, RETIRE_KEYS)).toEqual(['rate(1 hour)']);
      // ... and reconcile and the resume sweep's two functions (below): no other function runs on
      // a schedule.
      const scheduled = resourcesOfType(dev.template, 'AWS::Events::Rule').filter(
        ([, rule]) => rule.Properties.ScheduleExpression !== undefined,
      );
      expect(scheduled).toHaveLength(5);
    });

    it('takes the schedule from the rotationSchedule param', () => {
      expect(schedulesOf(prod.template, ROTATE_KEYS)).toEqual([PROD_ROTATION_SCHEDULE]);
    });

    it('serves POST /customers/{customerId}/rotations from rotateCustomer, with IAM authorization', () => {
      expect(routesOf(dev.template, ROTATE_CUSTOMER)).toEqual([
        ['POST', '/customers/{customerId}/rotations', 'AWS_IAM'],
      ]);
    });
  });

  describe('reconciliation', () => {
    it('exists with its handler and the longest timeout Lambda allows', () => {
      expectFunction(dev.template, RECONCILE, 'functions/reconcile/handler.handler', 900);
    });

    it('runs daily by default, from an EventBridge rule', () => {
      expect(paramsOf('dev').reconcileSchedule).toBe('rate(1 day)');
      expect(schedulesOf(dev.template, RECONCILE)).toEqual(['rate(1 day)']);
    });

    it('takes the schedule from the reconcileSchedule param', () => {
      expect(schedulesOf(prod.template, RECONCILE)).toEqual([PROD_RECONCILE_SCHEDULE]);
    });

    it('serves no route and reads no queue: the schedule or an operator invokes it', () => {
      expect(routesOf(dev.template, RECONCILE)).toEqual([]);
      expect(mappingsOf(dev.template, RECONCILE)).toEqual([]);
    });
  });

  // Two functions, one schedule: resumeRegistrations resumes registrations, finishOperations
  // finishes the operations that died holding their customer's lease.
  describe('resume sweep', () => {
    it.each([
      [RESUME, 'functions/resume-registrations/handler.handler'],
      [FINISH, 'functions/finish-operations/handler.handler'],
    ])("%s exists with its handler and the scheduled jobs' timeout", (functionId, handler) => {
      expectFunction(dev.template, functionId, handler, 300);
    });

    it.each([RESUME, FINISH])(
      '%s runs every 5 minutes by default (the wait of a customer whose operation died), at most resumeBatchSize a run',
      (functionId) => {
        expect(paramsOf('dev').resumeSchedule).toBe('rate(5 minutes)');
        expect(schedulesOf(dev.template, functionId)).toEqual(['rate(5 minutes)']);
        expect(environmentOf(dev.template, functionId).RESUME_BATCH_SIZE).toBe(String(paramsOf('dev').resumeBatchSize));
      },
    );

    it.each([RESUME, FINISH])('%s serves no route and reads no queue', (functionId) => {
      expect(routesOf(dev.template, functionId)).toEqual([]);
      expect(mappingsOf(dev.template, functionId)).toEqual([]);
    });

    // Both halves once ran in resumeRegistrations, with its role. Splitting them widened nothing
    // but the two calls that role lacked and finishing needs: disabling a key (a revocation, a
    // zero-grace rotation) and taking one out of a plan (a tier change, a plan repair).
    it.each([
      ['dev', () => dev],
      ['prod', () => prod],
    ])('in %s gives finishOperations no grant beyond its own log group that resumeRegistrations lacks, but UpdateApiKey and DeleteUsagePlanKey', (_, get) => {
      const outside = (roleId: string) =>
        ['apigateway', 'dynamodb', 'events', 'ses', 'sqs', 'sts'].flatMap((service) =>
          conditionalGrants(roleStatements(get().template, roleId), service),
        );
      const resume = new Set(outside('ResumeRegistrationsRole'));
      const finish = outside('FinishOperationsRole');
      const beyond = finish.filter((grant) => !resume.has(grant));
      expect(finish.length).toBeGreaterThan(0);
      expect(beyond.length).toBeGreaterThan(0);
      expect(beyond.filter((grant) => !/apigateway:(PATCH|DELETE)\b/.test(grant))).toEqual([]);
      expect(beyond.some((grant) => grant.includes('apigateway:PATCH') && grant.includes('/apikeys/'))).toBe(true);
      expect(beyond.some((grant) => grant.includes('apigateway:DELETE') && grant.includes('/usageplans/'))).toBe(true);
    });

    it('takes no more of the management budget than the one function did (7.5%), in shares that add up to it', () => {
      const shareOf = (functionId: string) => Number(environmentOf(dev.template, functionId).MANAGEMENT_SHARE_PER_SECOND);
      expect(shareOf(RESUME) + shareOf(FINISH)).toBeCloseTo(Number(paramsOf('dev').managementCallsPerSecond) * 0.075, 6);
    });
  });

  describe('onboarding and its reads', () => {
    it('serves only POST /registrations from register, with IAM authorization', () => {
      expect(routesOf(dev.template, 'RegisterLambdaFunction')).toEqual([['POST', '/registrations', 'AWS_IAM']]);
    });

    it('serves the reads from customerReads, with IAM authorization', () => {
      expectFunction(dev.template, CUSTOMER_READS, 'functions/customer-reads/handler.handler', 28);
      expect(routesOf(dev.template, CUSTOMER_READS).sort()).toEqual(
        [
          ['GET', '/registrations/{id}', 'AWS_IAM'],
          ['GET', '/customers/{customerId}', 'AWS_IAM'],
          ['GET', '/customers/{customerId}/events', 'AWS_IAM'],
        ].sort(),
      );
      expect(schedulesOf(dev.template, CUSTOMER_READS)).toEqual([]);
      expect(mappingsOf(dev.template, CUSTOMER_READS)).toEqual([]);
    });
  });

  describe('customer management', () => {
    it.each([
      [CHANGE_TIER, 'functions/change-tier/handler.handler', 28],
      [CHANGE_TIER_EVENTS, 'functions/change-tier-events/handler.handler', 60],
      [REVOKE_CUSTOMER, 'functions/revoke-customer/handler.handler', 28],
      [CUSTOMER_USAGE, 'functions/customer-usage/handler.handler', 28],
    ])('%s exists with its handler and timeout', (functionId, handler, timeout) => {
      expectFunction(dev.template, functionId, handler, timeout);
    });

    it.each([
      [CHANGE_TIER, 'PUT', '/customers/{customerId}/tier'],
      [REVOKE_CUSTOMER, 'DELETE', '/customers/{customerId}/keys'],
      [CUSTOMER_USAGE, 'GET', '/customers/{customerId}/usage'],
    ])('%s serves %s %s, with IAM authorization', (functionId, method, path) => {
      expect(routesOf(dev.template, functionId)).toEqual([[method, path, 'AWS_IAM']]);
    });

    it('serves no route from changeTierEvents', () => {
      expect(routesOf(dev.template, CHANGE_TIER_EVENTS)).toEqual([]);
    });

    // A batch must fit the timeout at the function's share of the budget: 2 calls per one-key
    // tier change at 0.25 calls/s per container is 8 s each, 40 s for 5 of the 60 s timeout.
    it('feeds changeTierEvents from the tier-changes queue in batches that fit its timeout at its budget, reporting partial failures', () => {
      const mappings = mappingsOf(dev.template, CHANGE_TIER_EVENTS);
      expect(mappings).toHaveLength(1);
      const perContainer = Number(environmentOf(dev.template, CHANGE_TIER_EVENTS).MANAGEMENT_SHARE_PER_SECOND) /
        Number(environmentOf(dev.template, CHANGE_TIER_EVENTS).MANAGEMENT_CONCURRENCY);
      const timeout = Number(resourceNamed(dev.template, CHANGE_TIER_EVENTS, 'AWS::Lambda::Function').Properties.Timeout);
      expect(Number(mappings[0]?.Properties.BatchSize) * (2 / perContainer)).toBeLessThanOrEqual(timeout * 0.75);
      expect(mappings[0]?.Properties).toMatchObject({
        EventSourceArn: getAtt(TIER_QUEUE, 'Arn'),
        BatchSize: 5,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        Enabled: true,
      });
      // The two queues' triggers and the table stream's (lifecycle events, below).
      expect(resourcesOfType(dev.template, 'AWS::Lambda::EventSourceMapping')).toHaveLength(3);
    });

    it.each([
      ['dev', () => dev, 'billing.example'],
      ['prod', () => prod, PROD_BILLING_SOURCE],
    ])('in %s routes PlanChanged events of billingEventSource on the default bus to the queue', (_, get, source) => {
      const rule = resourceNamed(get().template, PLAN_CHANGED_RULE, 'AWS::Events::Rule').Properties;
      expect(rule).toMatchObject({
        EventBusName: 'default',
        EventPattern: { source: [source], 'detail-type': ['PlanChanged'] },
        State: 'ENABLED',
      });
      expect(rule.ScheduleExpression).toBeUndefined();
      expect(rule.Targets).toEqual([{ Id: expect.any(String) as unknown, Arn: getAtt(TIER_QUEUE, 'Arn') }]);
    });

    it('defaults billingEventSource to billing.example', () => {
      expect(paramsOf('dev').billingEventSource).toBe('billing.example');
    });

    it('lets EventBridge send to the queue for that rule only', () => {
      const policies = resourcesOfType(dev.template, 'AWS::SQS::QueuePolicy');
      expect(policies).toHaveLength(1);
      expect(policies[0]?.[1].Properties).toEqual({
        Queues: [{ Ref: TIER_QUEUE }],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: expect.any(String) as unknown,
              Effect: 'Allow',
              Principal: { Service: 'events.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: getAtt(TIER_QUEUE, 'Arn'),
              Condition: { ArnEquals: { 'aws:SourceArn': getAtt(PLAN_CHANGED_RULE, 'Arn') } },
            },
          ],
        },
      });
    });
  });

  const queuePairs = [
    { queueId: QUEUE, dlqId: DLQ, name: 'provisioning', consumer: WORKER },
    { queueId: TIER_QUEUE, dlqId: TIER_DLQ, name: 'tier-changes', consumer: CHANGE_TIER_EVENTS },
  ];

  describe.each(queuePairs)('$name queue', ({ queueId, dlqId, name, consumer }) => {
    const queue = () => resourceNamed(dev.template, queueId, 'AWS::SQS::Queue').Properties;
    const dlq = () => resourceNamed(dev.template, dlqId, 'AWS::SQS::Queue').Properties;

    it('hides a message for six consumer timeouts', () => {
      const consumerTimeout = Number(
        resourceNamed(dev.template, consumer, 'AWS::Lambda::Function').Properties.Timeout,
      );
      expect(queue().VisibilityTimeout).toBe(6 * consumerTimeout);
    });

    it('moves a message to the DLQ after 5 receives; the DLQ keeps it 14 days', () => {
      expect(queue().RedrivePolicy).toEqual({ deadLetterTargetArn: getAtt(dlqId, 'Arn'), maxReceiveCount: 5 });
      expect(dlq().MessageRetentionPeriod).toBe(1_209_600);
    });

    it('are named per stage and encrypted at rest', () => {
      expect(queue()).toMatchObject({ QueueName: `${config.service}-dev-${name}`, SqsManagedSseEnabled: true });
      expect(dlq()).toMatchObject({ QueueName: `${config.service}-dev-${name}-dlq`, SqsManagedSseEnabled: true });
    });
  });

  describe('dead-letter alarm', () => {
    it('fires on one visible message in each DLQ and notifies the alarms topic', () => {
      const alarms = resourcesOfType(dev.template, 'AWS::CloudWatch::Alarm').filter(
        ([, alarm]) => alarm.Properties.Namespace === 'AWS/SQS',
      );
      // The queues' DLQs, and the table stream's (lifecycle events, below).
      expect(alarms).toHaveLength(queuePairs.length + 1);
      for (const { dlqId, name } of queuePairs) {
        const alarm = alarms.find(([, candidate]) =>
          JSON.stringify(candidate.Properties.Dimensions).includes(JSON.stringify(getAtt(dlqId, 'QueueName'))),
        )?.[1];
        expect(alarm?.Properties).toMatchObject({
          AlarmName: `${config.service}-dev-${name}-dlq-not-empty`,
          Namespace: 'AWS/SQS',
          MetricName: 'ApproximateNumberOfMessagesVisible',
          Dimensions: [{ Name: 'QueueName', Value: getAtt(dlqId, 'QueueName') }],
          Period: 60,
          EvaluationPeriods: 1,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: [{ Ref: 'AlarmTopic' }],
          OKActions: [{ Ref: 'AlarmTopic' }],
        });
        expect(String(alarm?.Properties.AlarmDescription)).toMatch(/StartMessageMoveTask/);
        expect(String(alarm?.Properties.AlarmDescription)).toContain(`${config.service}-dev-${name}-dlq`);
      }
      expect(resourceNamed(dev.template, 'AlarmTopic', 'AWS::SNS::Topic').Properties.TopicName).toBe(
        `${config.service}-dev-alarms`,
      );
    });

    it('emails alarmEmail only when one is configured', () => {
      const subscription = resourceNamed(prod.template, 'AlarmEmailSubscription', 'AWS::SNS::Subscription');
      expect(subscription.Condition).toBe('HasAlarmEmail');
      expect(subscription.Properties).toEqual({
        TopicArn: { Ref: 'AlarmTopic' },
        Protocol: 'email',
        Endpoint: 'ops@example.com',
      });
      expect(prod.template.Conditions?.HasAlarmEmail).toEqual({
        'Fn::Not': [{ 'Fn::Equals': ['ops@example.com', ''] }],
      });
      expect(paramsOf('dev').alarmEmail).toBe('');
      expect(dev.template.Conditions?.HasAlarmEmail).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
    });
  });

  // DESIGN §9: the table's stream brings the outbox's new EVENT# items to publishEvents, which puts
  // them on EventBridge; what its trigger gives up on is described in a DLQ of its own.
  describe('lifecycle events', () => {
    const stages = [
      ['dev', () => dev],
      ['prod', () => prod],
    ] as const;
    const mappings = () => mappingsOf(dev.template, PUBLISH_EVENTS);

    it('are published by publishEvents, which serves no route and runs on no schedule', () => {
      expectFunction(dev.template, PUBLISH_EVENTS, 'functions/publish-events/handler.handler', 30);
      expect(routesOf(dev.template, PUBLISH_EVENTS)).toEqual([]);
      expect(schedulesOf(dev.template, PUBLISH_EVENTS)).toEqual([]);
    });

    it.each(stages)('in %s go to the bus of eventBusName, with the source keyplan.<stage>', (stage, get) => {
      expect(paramsOf(stage).eventBusName).toBe('default');
      expect(environmentOf(get().template, PUBLISH_EVENTS)).toMatchObject({
        EVENT_SOURCE: `${config.service}.${stage}`,
        EVENT_BUS_NAME: 'default',
      });
    });

    it('come from the table stream: new outbox items only, partial batch failures, retried and halved, then to the DLQ', () => {
      expect(mappings()).toHaveLength(1);
      const properties = mappings()[0]?.Properties ?? {};
      expect(properties).toEqual({
        EventSourceArn: TABLE_STREAM,
        FunctionName: getAtt(PUBLISH_EVENTS, 'Arn'),
        Enabled: true,
        StartingPosition: 'TRIM_HORIZON',
        BatchSize: 100,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 10,
        DestinationConfig: { OnFailure: { Destination: getAtt(EVENTS_DLQ, 'Arn') } },
        FilterCriteria: { Filters: [{ Pattern: expect.any(String) as unknown }] },
      });
      const [filter] = (properties.FilterCriteria as { Filters: { Pattern: string }[] }).Filters;
      // The sort key prefix of shared/aws/table-keys.ts's eventKey.
      expect(JSON.parse(String(filter?.Pattern))).toEqual({
        eventName: ['INSERT'],
        dynamodb: { Keys: { sk: { S: [{ prefix: 'EVENT#' }] } } },
      });
    });

    it.each(stages)("in %s may be put on the one bus only with the stage's source", (stage, get) => {
      const statements = roleStatements(get().template, 'PublishEventsRole');
      const bus = 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default';
      expect(conditionalGrants(statements, 'events')).toEqual([
        `events:PutEvents ${bus} if ${JSON.stringify({ StringEquals: { 'events:source': `${config.service}.${stage}` } })}`,
      ]);
    });

    it('are the only business of their role: no other role reads the stream, puts events or sends to the DLQ', () => {
      const roles = resourcesOfType(dev.template, 'AWS::IAM::Role').map(([roleId]) => roleId);
      const holders = (match: (grant: string) => boolean, service: string) =>
        roles.filter((roleId) => grants(roleStatements(dev.template, roleId), service).some(match));
      expect(holders(() => true, 'events')).toEqual(['PublishEventsRole']);
      expect(holders((grant) => grant.includes('StreamArn'), 'dynamodb')).toEqual(['PublishEventsRole']);
      expect(holders((grant) => grant.includes(EVENTS_DLQ), 'sqs')).toEqual(['PublishEventsRole']);
    });

    it('that could not be published are described in a DLQ kept 14 days, alarmed like every DLQ', () => {
      expect(resourceNamed(dev.template, EVENTS_DLQ, 'AWS::SQS::Queue').Properties).toEqual({
        QueueName: `${config.service}-dev-events-dlq`,
        MessageRetentionPeriod: 1_209_600,
        SqsManagedSseEnabled: true,
      });
      const alarm = resourcesOfType(dev.template, 'AWS::CloudWatch::Alarm').find(([, candidate]) =>
        JSON.stringify(candidate.Properties.Dimensions).includes(JSON.stringify(getAtt(EVENTS_DLQ, 'QueueName'))),
      )?.[1];
      expect(alarm?.Properties).toMatchObject({
        AlarmName: `${config.service}-dev-events-dlq-not-empty`,
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Statistic: 'Maximum',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: 'AlarmTopic' }],
        OKActions: [{ Ref: 'AlarmTopic' }],
      });
      const description = String(alarm?.Properties.AlarmDescription);
      expect(description).toContain(`${config.service}-dev-events-dlq`);
      expect(description).toMatch(/publishEvents logs/);
      expect(description).toMatch(/audit trail/);
    });
  });

  describe('function error alarms', () => {
    // Every function: a Lambda error is a crash or a timeout, never an answer the code chose.
    const NAMES = Object.keys(FUNCTIONS).map((functionId) => {
      const name = functionId.replace(/LambdaFunction$/, '');
      return [functionId, `${name.charAt(0).toLowerCase()}${name.slice(1)}`];
    });

    it.each(NAMES)('fire on the first error of %s and notify the alarms topic', (functionId, name) => {
      const dimensions = JSON.stringify([{ Name: 'FunctionName', Value: { Ref: functionId } }]);
      const alarm = resourcesOfType(dev.template, 'AWS::CloudWatch::Alarm').find(
        ([, candidate]) => JSON.stringify(candidate.Properties.Dimensions) === dimensions,
      )?.[1];
      expect(alarm?.Properties).toMatchObject({
        Namespace: 'AWS/Lambda',
        AlarmName: `${config.service}-dev-${name}-errors`,
        MetricName: 'Errors',
        Statistic: 'Sum',
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: 'AlarmTopic' }],
      });
      expect(String(alarm?.Properties.AlarmDescription)).toContain(`/aws/lambda/${config.service}-dev-${name}`);
    });

    it('exist once per function and for nothing else', () => {
      const alarmed = resourcesOfType(dev.template, 'AWS::CloudWatch::Alarm')
        .filter(([, alarm]) => alarm.Properties.Namespace === 'AWS/Lambda')
        .map(([, alarm]) => (alarm.Properties.Dimensions as { Value: { Ref: string } }[])[0]?.Value.Ref);
      expect(alarmed.sort()).toEqual(Object.keys(FUNCTIONS).sort());
    });
  });

  describe('metric alarms', () => {
    it.each([
      ['rollbacks', 'Rollbacks', 'Sum', 1],
      ['key-ceiling', 'AccountKeyCount', 'Maximum', 8000],
      ['registrations-abandoned', 'RegistrationsAbandoned', 'Sum', 1],
      ['reconcile-failures', 'ReconcileFailures', 'Sum', 1],
    ])('%s watches %s of this stage only and notifies the alarms topic', (suffix, metric, statistic, threshold) => {
      const alarm = resourcesOfType(dev.template, 'AWS::CloudWatch::Alarm').find(
        ([, candidate]) => candidate.Properties.AlarmName === `${config.service}-dev-${suffix}`,
      )?.[1];
      expect(alarm?.Properties).toMatchObject({
        Namespace: 'keyplan',
        MetricName: metric,
        Dimensions: [{ Name: 'service', Value: `${config.service}-dev` }],
        Statistic: statistic,
        Threshold: threshold,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [{ Ref: 'AlarmTopic' }],
      });
      expect(String(alarm?.Properties.AlarmDescription).length).toBeGreaterThan(40);
    });

    it('see the metrics the functions emit: their service name is the alarms\' dimension', () => {
      for (const functionId of Object.keys(FUNCTIONS)) {
        expect(environmentOf(dev.template, functionId)).toMatchObject({
          POWERTOOLS_SERVICE_NAME: `${config.service}-dev`,
          POWERTOOLS_METRICS_NAMESPACE: 'keyplan',
        });
      }
    });

    it('put the key ceiling at 80% of the 10,000 keys per Region', () => {
      const ceiling = resourcesOfType(dev.template, 'AWS::CloudWatch::Alarm').find(
        ([, alarm]) => alarm.Properties.MetricName === 'AccountKeyCount',
      )?.[1];
      expect(ceiling?.Properties.Threshold).toBe(0.8 * 10_000);
    });
  });

  describe('deployment bucket', () => {
    it.each([
      ['dev', () => dev],
      ['prod', () => prod],
    ])('in %s blocks every kind of public access, keeps SSE and refuses plain HTTP', (_, get) => {
      const template = get().template;
      expect(resourceNamed(template, 'ServerlessDeploymentBucket', 'AWS::S3::Bucket').Properties).toMatchObject({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
      });
      const policy = resourceNamed(template, 'ServerlessDeploymentBucketPolicy', 'AWS::S3::BucketPolicy');
      expect((policy.Properties.PolicyDocument as { Statement: unknown[] }).Statement).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:*',
          Condition: { Bool: { 'aws:SecureTransport': false } },
        }),
      );
    });
  });

  describe('table', () => {
    it.each([
      ['dev', () => dev],
      ['prod', () => prod],
    ])('in %s is on demand, with PITR, TTL, SSE, a stream of new images and deletion protection as configured', (stage, get) => {
      const tables = resourcesOfType(get().template, 'AWS::DynamoDB::Table');
      expect(tables.map(([logicalId]) => logicalId)).toEqual(['KeyplanTable']);
      const keyplanTable = resourceNamed(get().template, 'KeyplanTable', 'AWS::DynamoDB::Table');
      const protect = paramsOf(stage).deletionProtection === true;
      expect(keyplanTable.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        // The outbox's new EVENT# items, for the lifecycle events' publisher.
        StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: protect,
      });
      expect(table.TimeToLiveAttribute).toBe('expiresAt');
      expect(keyplanTable.DeletionPolicy).toBe(protect ? 'Retain' : 'Delete');
    });

    it('is configured protected in every stage but dev', () => {
      expect(paramsOf('prod').deletionProtection).toBe(true);
      expect(paramsOf('dev').deletionProtection).toBe(false);
    });
  });

  describe('usage plans', () => {
    it('exist once per tier of infra/tiers.json, named per stage', () => {
      const plans = resourcesOfType(dev.template, 'AWS::ApiGateway::UsagePlan');
      expect(plans.map(([, plan]) => plan.Properties.UsagePlanName).sort()).toEqual(
        tiers.map((tier) => `${config.service}-dev-${tier}`).sort(),
      );
    });

    it('attach to the customer API stage only when one is configured', () => {
      for (const [, plan] of resourcesOfType(prod.template, 'AWS::ApiGateway::UsagePlan')) {
        expect(plan.Properties.ApiStages).toEqual({
          'Fn::If': ['HasApiStage', [{ ApiId: 'a1b2c3d4e5', Stage: 'v1' }], { Ref: 'AWS::NoValue' }],
        });
      }
      expect(dev.template.Conditions?.HasApiStage).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
      expect(prod.template.Conditions?.HasApiStage).toEqual({
        'Fn::Not': [{ 'Fn::Equals': ['a1b2c3d4e5', ''] }],
      });
    });
  });

  describe('HTTP API', () => {
    it('requires IAM authorization on every method', () => {
      const methods = resourcesOfType(dev.template, 'AWS::ApiGateway::Method');
      expect(methods.length).toBeGreaterThanOrEqual(4);
      const authorization = Object.fromEntries(
        methods.map(([logicalId, method]) => [logicalId, method.Properties.AuthorizationType]),
      );
      expect(authorization).toEqual(
        Object.fromEntries(methods.map(([logicalId]) => [logicalId, 'AWS_IAM'])),
      );
    });
  });

  // Every function role gets exactly the grants of the calls its function makes, plus its own log
  // group. register runs the provisioning saga for synchronous requests and the worker for queued
  // ones; rotation runs the same saga for the new key, queries the due index, disables old keys and
  // holds the customer lock; retirement only disables, deletes and reminds. A tier change moves keys
  // between the stage's plans, a revocation disables keys, the usage route only reads; all three
  // hold or read the customer's items.
  const planIds = () =>
    resourcesOfType(dev.template, 'AWS::ApiGateway::UsagePlan').map(([logicalId]) => logicalId);
  const tableArn = JSON.stringify(getAtt('KeyplanTable', 'Arn'));
  const dueIndexArn = '${KeyplanTable.Arn}/index/due';
  const tagsOfNewKey =
    'arn:${AWS::Partition}:apigateway:${AWS::Region}::/tags/arn%3A${AWS::Partition}%3Aapigateway%3A${AWS::Region}%3A%3A%2Fapikeys%2F*';
  // A stage touches only its own keys (DESIGN §7): a call on one key requires the key's
  // keyplan:stage tag to be the stage, a new key must carry it. The listing (GET /apikeys) cannot
  // be narrowed by tag, so it is the one grant on keys without a condition.
  const STAGE_TAG = 'keyplan:stage';
  const onOwnKey = (grant: string, stage = 'dev') =>
    `${grant} if ${JSON.stringify({ StringEquals: { [`aws:ResourceTag/${STAGE_TAG}`]: stage } })}`;
  const taggedForStage = (grant: string, stage = 'dev') =>
    `${grant} if ${JSON.stringify({ StringEquals: { [`aws:RequestTag/${STAGE_TAG}`]: stage } })}`;
  const listApiKeys = `apigateway:GET ${apiGateway('/apikeys')}`;
  const readApiKey = onOwnKey(`apigateway:GET ${apiGateway('/apikeys/*')}`);
  const deleteApiKey = onOwnKey(`apigateway:DELETE ${apiGateway('/apikeys/*')}`);
  const sagaApiGateway = () => [
    taggedForStage(`apigateway:POST ${apiGateway('/apikeys')}`),
    taggedForStage(`apigateway:PUT ${tagsOfNewKey}`),
    listApiKeys,
    readApiKey,
    deleteApiKey,
    ...planIds().flatMap((id) => [
      `apigateway:POST ${apiGateway(`/usageplans/\${${id}}/keys`)}`,
      `apigateway:GET ${apiGateway(`/usageplans/\${${id}}`)}`,
      `apigateway:GET ${apiGateway(`/usageplans/\${${id}}/keys/*`)}`,
    ]),
  ];
  const sagaDynamoDb = [
    'dynamodb:ConditionCheckItem',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:UpdateItem',
  ].map((action) => `${action} ${tableArn}`);
  const updateApiKey = onOwnKey(`apigateway:PATCH ${apiGateway('/apikeys/*')}`);
  const queryDueIndex = `dynamodb:Query ${dueIndexArn}`;
  const releaseLock = `dynamodb:DeleteItem ${tableArn}`;
  const readStream = ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'].map(
    (action) => `${action} ${JSON.stringify(TABLE_STREAM)}`,
  );
  const consumeQueue = ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'];
  const rotation = {
    services: ['apigateway', 'dynamodb', 'logs', 'ses'],
    queue: QUEUE,
    queueActions: [],
    sendsEmail: true,
    apiGateway: () => [...sagaApiGateway(), updateApiKey],
    dynamoDb: [...sagaDynamoDb, queryDueIndex, releaseLock],
  };
  // Customer items and the lock: a revocation's transaction is two updates (UpdateItem), no check.
  const customerDynamoDb = [
    ...['dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'].map(
      (action) => `${action} ${tableArn}`,
    ),
    releaseLock,
  ];
  // CreateUsagePlanKey, GetUsagePlanKey, DeleteUsagePlanKey on the stage's plans; no UpdateUsagePlan.
  const moveKeyBetweenPlans = () =>
    planIds().flatMap((id) => [
      `apigateway:POST ${apiGateway(`/usageplans/\${${id}}/keys`)}`,
      `apigateway:GET ${apiGateway(`/usageplans/\${${id}}/keys/*`)}`,
      `apigateway:DELETE ${apiGateway(`/usageplans/\${${id}}/keys/*`)}`,
    ]);
  const getUsage = () => planIds().map((id) => `apigateway:GET ${apiGateway(`/usageplans/\${${id}}/usage`)}`);
  // The reconciler lists every key (GetApiKeys, GetApiKey, never a value) and the keys of each stage
  // plan (GetUsagePlanKeys); it deletes orphans (DeleteApiKey) and moves a key into the plan of its
  // tier (DeleteUsagePlanKey, CreateUsagePlanKey, GetUsagePlanKey on "already associated"). It
  // creates no key and changes no plan. In the table: the due index, the customers' tiers
  // (BatchGetItem), key item updates, and the customer lock (PutItem, DeleteItem) around a repair.
  const reconciliation = () => [
    listApiKeys,
    readApiKey,
    deleteApiKey,
    ...planIds().flatMap((id) => [
      `apigateway:GET ${apiGateway(`/usageplans/\${${id}}/keys`)}`,
      `apigateway:POST ${apiGateway(`/usageplans/\${${id}}/keys`)}`,
      `apigateway:GET ${apiGateway(`/usageplans/\${${id}}/keys/*`)}`,
      `apigateway:DELETE ${apiGateway(`/usageplans/\${${id}}/keys/*`)}`,
    ]),
  ];
  const tierChange = {
    services: ['apigateway', 'dynamodb', 'logs'],
    queue: QUEUE,
    queueActions: [],
    sendsEmail: false,
    apiGateway: moveKeyBetweenPlans,
    dynamoDb: customerDynamoDb,
  };

  describe.each([
    {
      roleId: 'RegisterRole',
      functionName: 'register',
      services: ['apigateway', 'dynamodb', 'logs', 'ses', 'sqs'],
      queue: QUEUE,
      queueActions: ['sqs:SendMessage'],
      sendsEmail: true,
      apiGateway: sagaApiGateway,
      dynamoDb: sagaDynamoDb,
    },
    {
      roleId: 'ProvisionWorkerRole',
      functionName: 'provisionWorker',
      services: ['apigateway', 'dynamodb', 'logs', 'ses', 'sqs'],
      queue: QUEUE,
      queueActions: consumeQueue,
      sendsEmail: true,
      apiGateway: sagaApiGateway,
      dynamoDb: sagaDynamoDb,
    },
    {
      roleId: 'ResumeRegistrationsRole',
      functionName: 'resumeRegistrations',
      services: ['apigateway', 'dynamodb', 'logs', 'ses'],
      queue: QUEUE,
      queueActions: [],
      sendsEmail: true,
      apiGateway: sagaApiGateway,
      dynamoDb: [...sagaDynamoDb, queryDueIndex],
    },
    // The sweep's other half, split from resumeRegistrations: the saga's API Gateway and SES grants
    // (a resumed rotation makes and emails a successor), disabling a key (a revocation, a zero-grace
    // rotation) and taking one out of a plan (a tier change, a plan repair), the customer's records
    // without the registration table's GetItem and ConditionCheckItem, and the due index.
    {
      roleId: 'FinishOperationsRole',
      functionName: 'finishOperations',
      services: ['apigateway', 'dynamodb', 'logs', 'ses'],
      queue: QUEUE,
      queueActions: [],
      sendsEmail: true,
      apiGateway: () => [
        ...sagaApiGateway(),
        updateApiKey,
        ...planIds().map((id) => `apigateway:DELETE ${apiGateway(`/usageplans/\${${id}}/keys/*`)}`),
      ],
      dynamoDb: [...['dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'].map((action) => `${action} ${tableArn}`), queryDueIndex],
    },
    // The read routes: a registration (GetItem), a customer and its events (Query); nothing else.
    {
      roleId: 'CustomerReadsRole',
      functionName: 'customerReads',
      services: ['dynamodb', 'logs'],
      queue: QUEUE,
      queueActions: [],
      sendsEmail: false,
      apiGateway: () => [],
      dynamoDb: ['dynamodb:GetItem', 'dynamodb:Query'].map((action) => `${action} ${tableArn}`),
    },
    { roleId: 'RotateKeysRole', functionName: 'rotateKeys', ...rotation },
    { roleId: 'RotateCustomerRole', functionName: 'rotateCustomer', ...rotation },
    {
      roleId: 'RetireKeysRole',
      functionName: 'retireKeys',
      services: ['apigateway', 'dynamodb', 'logs', 'ses'],
      queue: QUEUE,
      queueActions: [],
      sendsEmail: true,
      apiGateway: () => [updateApiKey, deleteApiKey],
      dynamoDb: [
        ...['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'].map((action) => `${action} ${tableArn}`),
        queryDueIndex,
      ],
    },
    { roleId: 'ChangeTierRole', functionName: 'changeTier', ...tierChange },
    {
      roleId: 'ChangeTierEventsRole',
      functionName: 'changeTierEvents',
      ...tierChange,
      services: ['apigateway', 'dynamodb', 'logs', 'sqs'],
      queue: TIER_QUEUE,
      queueActions: consumeQueue,
    },
    {
      roleId: 'RevokeCustomerRole',
      functionName: 'revokeCustomer',
      services: ['apigateway', 'dynamodb', 'logs'],
      queue: QUEUE,
      queueActions: [],
      sendsEmail: false,
      apiGateway: () => [updateApiKey],
      dynamoDb: customerDynamoDb,
    },
    {
      roleId: 'CustomerUsageRole',
      functionName: 'customerUsage',
      services: ['apigateway', 'dynamodb', 'logs'],
      queue: QUEUE,
      queueActions: [],
      sendsEmail: false,
      apiGateway: getUsage,
      dynamoDb: [`dynamodb:Query ${tableArn}`],
    },
    {
      roleId: 'PublishEventsRole',
      functionName: 'publishEvents',
      // events: PutEvents, checked on its own below (bus and source).
      services: ['dynamodb', 'events', 'logs', 'sqs'],
      queue: EVENTS_DLQ,
      queueActions: ['sqs:SendMessage'],
      sendsEmail: false,
      apiGateway: () => [],
      // The stream only, for Lambda's trigger: nothing of the table itself.
      dynamoDb: readStream,
    },
    {
      roleId: 'ReconcileRole',
      functionName: 'reconcile',
      services: ['apigateway', 'dynamodb', 'logs'],
      queue: QUEUE,
      queueActions: [],
      sendsEmail: false,
      apiGateway: reconciliation,
      dynamoDb: [
        ...['dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'].map(
          (action) => `${action} ${tableArn}`,
        ),
        queryDueIndex,
        releaseLock,
      ],
    },
  ])('$roleId', (role) => {
    const { roleId, functionName, services, queue, queueActions, sendsEmail, dynamoDb } = role;
    const expectedApiGateway = role.apiGateway;
    it('allows no wildcard action and no bare wildcard resource', () => {
      for (const statement of roleStatements(dev.template, roleId)) {
        expect(statement.Effect).toBe('Allow');
        for (const action of asArray(statement.Action)) {
          expect(action).not.toContain('*');
        }
        for (const resource of asArray(statement.Resource)) {
          expect(resourceText(resource)).not.toBe('*');
        }
      }
    });

    it(`touches only ${services.join(', ')}`, () => {
      const used = new Set(
        roleStatements(dev.template, roleId).flatMap((statement) =>
          asArray(statement.Action).map((action) => action.split(':')[0]),
        ),
      );
      expect([...used].sort()).toEqual(services);
    });

    it('writes only to its own log group', () => {
      const logGroup = `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${config.service}-dev-${functionName}:*`;
      expect(grants(roleStatements(dev.template, roleId), 'logs').sort()).toEqual([
        `logs:CreateLogStream ${logGroup}`,
        `logs:PutLogEvents ${logGroup}`,
      ]);
    });

    const onQueue = queueActions.length > 0 ? queue : 'no queue';
    it(`reaches SQS only for [${queueActions.join(', ')}] on ${onQueue}`, () => {
      const queueArn = JSON.stringify(getAtt(queue, 'Arn'));
      expect(grants(roleStatements(dev.template, roleId), 'sqs').sort()).toEqual(
        queueActions.map((action) => `${action} ${queueArn}`),
      );
    });

    it('reaches API Gateway only for the calls of its function, on one key only with its stage tag', () => {
      expect(planIds()).toHaveLength(tiers.length);
      expect(conditionalGrants(roleStatements(dev.template, roleId), 'apigateway').sort()).toEqual(
        expectedApiGateway().sort(),
      );
    });

    it('reaches DynamoDB only on the table (and the due index if it queries it) with its actions', () => {
      expect(grants(roleStatements(dev.template, roleId), 'dynamodb').sort()).toEqual([...dynamoDb].sort());
    });

    const emailTest = sendsEmail
      ? 'sends email only as the sender, through its configuration set if any'
      : 'sends no email';
    it.each([
      ['dev', () => dev],
      ['prod', () => prod],
    ])(`in %s ${emailTest}`, (stage, get) => {
      const params = paramsOf(stage);
      const sender = String(params.senderEmail);
      const identity = (name: string) =>
        `arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:identity/${name}`;
      const resources = [identity(sender), identity(sender.slice(sender.indexOf('@') + 1))];
      if (params.sesConfigurationSet) {
        resources.push(
          `arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:configuration-set/${String(params.sesConfigurationSet)}`,
        );
      }
      const statements = roleStatements(get().template, roleId);
      expect(grants(statements, 'ses').sort()).toEqual(
        sendsEmail
          ? resources.map((resource) => `ses:SendEmail ${resource}`).sort()
          : [],
      );
      for (const statement of statements.filter((s) => grants([s], 'ses').length > 0)) {
        expect(statement.Condition).toEqual({ StringEquals: { 'ses:FromAddress': sender } });
      }
    });
  });

  it('grants the due index only to the roles that query it, and no other index', () => {
    const indexGrants = resourcesOfType(dev.template, 'AWS::IAM::Role').flatMap(([roleId]) =>
      grants(roleStatements(dev.template, roleId), 'dynamodb')
        .filter((grant) => grant.includes('/index/'))
        .map((grant) => `${roleId} ${grant}`),
    );
    expect(indexGrants.sort()).toEqual(
      ['FinishOperationsRole', 'ReconcileRole', 'ResumeRegistrationsRole', 'RetireKeysRole', 'RotateCustomerRole', 'RotateKeysRole'].map(
        (roleId) => `${roleId} ${queryDueIndex}`,
      ),
    );
  });

  // The grants above are what the functions should need; this derives what their code can call,
  // from the bundle each function ships, so a role keeping an action its code no longer sends
  // fails here even if the expectation above was updated with it.
  describe('grants derived from the code each function ships', () => {
    it.each(Object.entries(FUNCTIONS))('%s allows no action its code never calls', (functionId, roleId) => {
      const fn = resourceNamed(dev.template, functionId, 'AWS::Lambda::Function');
      const zip = join(dev.output, basename((fn.Properties.Code as { S3Key: string }).S3Key));
      const { operations, sources } = operationsOfBundle(zip, String(fn.Properties.Handler).replace(/\.[^.]+$/, ''));
      expect(sources.length).toBeGreaterThan(3);
      expect([...operations].filter((operation) => !(operation in IAM_OF_OPERATION))).toEqual([]);

      const callable = new Set([...operations].flatMap((operation) => IAM_OF_OPERATION[operation] ?? []));
      // Lambda polls a queue or reads a stream with the function's role, and sends what a stream's
      // trigger gives up on to its destination; the code never calls these itself.
      for (const mapping of mappingsOf(dev.template, functionId)) {
        const fromStream = JSON.stringify(mapping.Properties.EventSourceArn) === JSON.stringify(TABLE_STREAM);
        const actions = fromStream
          ? ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams']
          : ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'];
        if (mapping.Properties.DestinationConfig) actions.push('sqs:SendMessage');
        for (const action of actions) callable.add(action);
      }
      const statements = roleStatements(dev.template, roleId);
      const granted = ['apigateway', 'dynamodb', 'events', 'ses', 'sqs'].flatMap((service) =>
        grants(statements, service).map(normalizedGrant),
      );
      expect([...new Set(granted)].filter((grant) => !callable.has(grant))).toEqual([]);
    });
  });

  const allRoleGrants = (service: string) =>
    resourcesOfType(dev.template, 'AWS::IAM::Role').flatMap(([roleId]) =>
      grants(roleStatements(dev.template, roleId), service).map((grant) => `${roleId} ${grant}`),
    );

  it('gives every function its own role, each checked above', () => {
    expect(resourcesOfType(dev.template, 'AWS::IAM::Role').map(([roleId]) => roleId).sort()).toEqual(
      Object.values(FUNCTIONS).sort(),
    );
  });

  // UpdateUsagePlan (PATCH /usageplans/<id>) could change a tier's limits or attach stages: plans
  // belong to the stack. PATCH is granted on API keys only (UpdateApiKey, to disable a key).
  it('lets no role PATCH a usage plan', () => {
    const patches = allRoleGrants('apigateway').filter((grant) => grant.split(' ')[1] === 'apigateway:PATCH');
    expect(patches.length).toBeGreaterThan(0);
    for (const grant of patches) {
      expect(grant).not.toMatch(/usageplans/);
      expect(grant.endsWith(` ${apiGateway('/apikeys/*')}`)).toBe(true);
    }
  });

  // Every role, both stages: whatever a role may do to one key (GET, PATCH, DELETE /apikeys/<id>)
  // needs the key's keyplan:stage tag to be the stage; creating and tagging on create need the new
  // key to carry it. Only the listing is unconditional, and it is GET.
  it.each([
    ['dev', () => dev],
    ['prod', () => prod],
  ])('in %s lets no role touch a key of another stage, nor create one without its tag', (stage, get) => {
    const template = get().template;
    const keyGrants = resourcesOfType(template, 'AWS::IAM::Role').flatMap(([roleId]) =>
      conditionalGrants(roleStatements(template, roleId), 'apigateway').filter((grant) => /apikeys/.test(grant)),
    );
    const required = (grant: string): string => {
      const [action = '', resource = ''] = grant.split(' ');
      const call = `${action} ${resource}`;
      if (resource === apiGateway('/apikeys/*')) return onOwnKey(call, stage);
      if (call === listApiKeys) return listApiKeys;
      if (call === `apigateway:POST ${apiGateway('/apikeys')}` || call === `apigateway:PUT ${tagsOfNewKey}`) {
        return taggedForStage(call, stage);
      }
      return `no such grant: ${grant}`;
    };
    expect(keyGrants.length).toBeGreaterThan(0);
    expect(keyGrants).toEqual(keyGrants.map(required));
  });

  it('grants GetUsage only to the usage role, on the stage plans', () => {
    const usage = allRoleGrants('apigateway').filter((grant) => grant.endsWith('/usage'));
    expect(usage.sort()).toEqual(getUsage().map((grant) => `CustomerUsageRole ${grant}`).sort());
  });

  it('lets only the lock holders delete from the table', () => {
    const deletes = allRoleGrants('dynamodb').filter((grant) => grant.split(' ')[1] === 'dynamodb:DeleteItem');
    expect(deletes.sort()).toEqual(
      [
        'ChangeTierEventsRole',
        'ChangeTierRole',
        'ReconcileRole',
        'RevokeCustomerRole',
        'RotateCustomerRole',
        'RotateKeysRole',
      ].map((roleId) => `${roleId} ${releaseLock}`),
    );
  });

  // cfn-lint (the CloudFormation spec: types, properties, references, values) and checkov (security
  // and hardening policies) on both packages: prod differs (deletion protection, API stage, alarm
  // email). A rule that does not fit is skipped in the tool's config file, with its reason there.
  describe('static analysis', () => {
    it('cfn-lint finds no error and no warning in dev or prod', async () => {
      const run = await cfnLint;
      expect(cfnLintFindings(run, stageOf)).toEqual([]);
      expect(exitOf(run)).toBe('exit 0');
      expect(run.seconds).toBeLessThan(TOOL_BUDGET_SECONDS);
    });

    it(`checkov fails no check in dev or prod but those skipped in ${CHECKOV_CONFIG}`, async () => {
      const run = await checkov;
      const report = checkovReport(run);
      expect(report ? 'report' : noReport(run)).toBe('report');
      const failed = (report?.results.failed_checks ?? []).map(
        (check) => `${stageOf(check.file_abs_path)}: ${check.check_id} on ${check.resource}: ${check.check_name}`,
      );
      expect(failed).toEqual([]);
      expect(exitOf(run)).toBe('exit 0');
      // It read every resource of both templates and ran its checks on them.
      const resourceCount = [dev, prod]
        .map((packaged) => Object.keys(packaged.template.Resources).length)
        .reduce((sum, count) => sum + count, 0);
      expect(report?.summary).toMatchObject({ failed: 0, parsing_errors: 0, resource_count: resourceCount });
      expect(report?.summary.passed).toBeGreaterThan(0);
      expect(run.seconds).toBeLessThan(TOOL_BUDGET_SECONDS);
    });

    it.each([
      [CHECKOV_CONFIG, 'skip-check', /^CKV2?_AWS_\d+$/],
      [CFN_LINT_CONFIG, 'ignore_checks', /^[EWI]\d{4}$/],
    ])('%s gives a reason for every rule it skips', (configFile, key, ruleId) => {
      const skipped = skippedRules(configFile, key);
      expect(skipped.length).toBeGreaterThan(0);
      for (const [rule, reason] of skipped) {
        // A sentence, not a placeholder, after the id.
        expect({ rule, reason }).toEqual({
          rule: expect.stringMatching(ruleId) as unknown,
          reason: expect.stringMatching(/^\S.{29,}/) as unknown,
        });
      }
      expect(new Set(skipped.map(([rule]) => rule)).size).toBe(skipped.length);
    });
  });
});
