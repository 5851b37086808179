import { execFileSync } from 'node:child_process';
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * Packages the service the way a deploy would (osls + serverless-esbuild) and reads the result:
 * the CloudFormation template and the function zip. No AWS account is involved: the packaging
 * runs with every AWS_* variable removed and no shared config, which is also the proof that it
 * needs none.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE_TIMEOUT_MS = 180_000;
const MAX_ZIP_BYTES = 2 * 1024 * 1024;

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
function packageStage(stage: string, extraArgs: string[] = []): Packaged {
  const dir = mkdtempSync(join(tmpdir(), `keyplan-package-${stage}-`));
  cpSync(root, dir, {
    recursive: true,
    filter: (source) => {
      const top = relative(root, source).split(sep)[0] ?? '';
      return !top.startsWith('.') && top !== 'node_modules' && top !== 'coverage';
    },
  });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
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
const QUEUE = 'ProvisioningQueue';
const DLQ = 'ProvisioningDeadLetterQueue';
/** The saga's configuration, which every function reads (shared/config.ts). */
const SAGA_SETTINGS = [
  'TABLE_NAME',
  'TIER_MAP',
  'SENDER_EMAIL',
  'SES_CONFIGURATION_SET',
  'ROTATION_DAYS',
  'GRACE_DAYS',
  'KEY_NAME_PREFIX',
];

describe('packaged deployment (osls package, offline)', () => {
  let dev: Packaged;
  let prod: Packaged;

  beforeAll(() => {
    dev = packageStage('dev');
    // prod with a customer API stage and an alarm address, to see the protected, attached and
    // subscribed variants too.
    prod = packageStage('prod', [
      '--param=apiId=a1b2c3d4e5',
      '--param=apiStage=v1',
      '--param=alarmEmail=ops@example.com',
    ]);
  }, 2 * PACKAGE_TIMEOUT_MS);

  afterAll(() => {
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

    it('give the worker the saga configuration of register and the management budget', () => {
      const register = environmentOf(dev.template, 'RegisterLambdaFunction');
      const worker = environmentOf(dev.template, WORKER);
      const saga = (variables: Record<string, unknown>) =>
        Object.fromEntries(SAGA_SETTINGS.map((name) => [name, variables[name]]));
      expect(saga(worker)).toEqual(saga(register));
      expect(Object.values(saga(worker))).not.toContain(undefined);
      // CloudFormation environment values are strings.
      expect(worker.MANAGEMENT_CALLS_PER_SECOND).toBe(String(paramsOf('dev').managementCallsPerSecond));
      expect(worker.WORKER_CONCURRENCY).toBe(String(paramsOf('dev').workerConcurrency));
    });

    it('give every function a claim lease longer than the longest function timeout', () => {
      const timeouts = ['RegisterLambdaFunction', WORKER].map((id) =>
        Number(resourceNamed(dev.template, id, 'AWS::Lambda::Function').Properties.Timeout),
      );
      for (const id of ['RegisterLambdaFunction', WORKER]) {
        expect(Number(environmentOf(dev.template, id).LEASE_SECONDS)).toBeGreaterThan(Math.max(...timeouts));
      }
    });

    it('use the per-function role, not the framework-wide one', () => {
      const register = resourceNamed(dev.template, 'RegisterLambdaFunction', 'AWS::Lambda::Function');
      expect(register.Properties.Role).toEqual(getAtt('RegisterRole', 'Arn'));
      const worker = resourceNamed(dev.template, WORKER, 'AWS::Lambda::Function');
      expect(worker.Properties.Role).toEqual(getAtt('ProvisionWorkerRole', 'Arn'));
      expect(dev.template.Resources.IamRoleLambdaExecution).toBeUndefined();
    });
  });

  describe('provisioning worker', () => {
    const mappings = () => resourcesOfType(dev.template, 'AWS::Lambda::EventSourceMapping');

    it('exists with a 60 s timeout', () => {
      const worker = resourceNamed(dev.template, WORKER, 'AWS::Lambda::Function');
      expect(worker.Properties).toMatchObject({
        Handler: 'functions/provision-worker/handler.handler',
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Timeout: 60,
        MemorySize: 512,
      });
    });

    it('is fed by the provisioning queue in batches, reporting partial failures', () => {
      expect(mappings()).toHaveLength(1);
      const [, mapping] = mappings()[0] ?? [];
      expect(mapping?.Properties).toMatchObject({
        EventSourceArn: getAtt(QUEUE, 'Arn'),
        FunctionName: getAtt(WORKER, 'Arn'),
        BatchSize: 10,
        MaximumBatchingWindowInSeconds: 1,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        Enabled: true,
      });
    });

    it('runs at most workerConcurrency containers, the share the budget is divided by', () => {
      const [, mapping] = mappings()[0] ?? [];
      const concurrency = paramsOf('dev').workerConcurrency;
      expect(concurrency).toBe(2);
      expect(mapping?.Properties.ScalingConfig).toEqual({ MaximumConcurrency: concurrency });
    });
  });

  describe('provisioning queue', () => {
    const queue = () => resourceNamed(dev.template, QUEUE, 'AWS::SQS::Queue').Properties;
    const dlq = () => resourceNamed(dev.template, DLQ, 'AWS::SQS::Queue').Properties;

    it('hides a message for at least six worker timeouts', () => {
      const workerTimeout = Number(
        resourceNamed(dev.template, WORKER, 'AWS::Lambda::Function').Properties.Timeout,
      );
      expect(queue().VisibilityTimeout).toBeGreaterThanOrEqual(6 * workerTimeout);
    });

    it('moves a message to the DLQ after 5 receives; the DLQ keeps it 14 days', () => {
      expect(queue().RedrivePolicy).toEqual({ deadLetterTargetArn: getAtt(DLQ, 'Arn'), maxReceiveCount: 5 });
      expect(dlq().MessageRetentionPeriod).toBe(1_209_600);
    });

    it('are named per stage and encrypted at rest', () => {
      expect(queue()).toMatchObject({ QueueName: `${config.service}-dev-provisioning`, SqsManagedSseEnabled: true });
      expect(dlq()).toMatchObject({ QueueName: `${config.service}-dev-provisioning-dlq`, SqsManagedSseEnabled: true });
    });
  });

  describe('dead-letter alarm', () => {
    it('fires on one visible message in the DLQ and notifies the alarms topic', () => {
      const alarms = resourcesOfType(dev.template, 'AWS::CloudWatch::Alarm');
      expect(alarms).toHaveLength(1);
      const [, alarm] = alarms[0] ?? [];
      expect(alarm?.Properties).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: getAtt(DLQ, 'QueueName') }],
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: 'AlarmTopic' }],
      });
      expect(String(alarm?.Properties.AlarmDescription)).toMatch(/StartMessageMoveTask/);
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

  describe('table', () => {
    it.each([
      ['dev', () => dev],
      ['prod', () => prod],
    ])('in %s is on demand, with PITR, TTL, SSE and deletion protection as configured', (stage, get) => {
      const tables = resourcesOfType(get().template, 'AWS::DynamoDB::Table');
      expect(tables.map(([logicalId]) => logicalId)).toEqual(['KeyplanTable']);
      const keyplanTable = resourceNamed(get().template, 'KeyplanTable', 'AWS::DynamoDB::Table');
      const protect = paramsOf(stage).deletionProtection === true;
      expect(keyplanTable.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
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
      expect(methods.length).toBeGreaterThanOrEqual(3);
      const authorization = Object.fromEntries(
        methods.map(([logicalId, method]) => [logicalId, method.Properties.AuthorizationType]),
      );
      expect(authorization).toEqual(
        Object.fromEntries(methods.map(([logicalId]) => [logicalId, 'AWS_IAM'])),
      );
    });
  });

  // register runs the saga for synchronous requests and the worker for queued ones: both roles get
  // exactly the saga's grants, plus their own log group and their side of the queue.
  describe.each([
    {
      roleId: 'RegisterRole',
      functionName: 'register',
      queueActions: ['sqs:SendMessage'],
    },
    {
      roleId: 'ProvisionWorkerRole',
      functionName: 'provisionWorker',
      queueActions: ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
    },
  ])('$roleId', ({ roleId, functionName, queueActions }) => {
    const planIds = () =>
      resourcesOfType(dev.template, 'AWS::ApiGateway::UsagePlan').map(([logicalId]) => logicalId);

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

    it('touches only logs, DynamoDB, API Gateway, SES and SQS', () => {
      const services = new Set(
        roleStatements(dev.template, roleId).flatMap((statement) =>
          asArray(statement.Action).map((action) => action.split(':')[0]),
        ),
      );
      expect([...services].sort()).toEqual(['apigateway', 'dynamodb', 'logs', 'ses', 'sqs']);
    });

    it('writes only to its own log group', () => {
      const logGroup = `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${config.service}-dev-${functionName}:*`;
      expect(grants(roleStatements(dev.template, roleId), 'logs').sort()).toEqual([
        `logs:CreateLogStream ${logGroup}`,
        `logs:PutLogEvents ${logGroup}`,
      ]);
    });

    it(`reaches SQS only for ${queueActions.join(', ')} on the provisioning queue`, () => {
      const queueArn = JSON.stringify(getAtt(QUEUE, 'Arn'));
      expect(grants(roleStatements(dev.template, roleId), 'sqs').sort()).toEqual(
        queueActions.map((action) => `${action} ${queueArn}`),
      );
    });

    it('reaches API Gateway only on key paths and the generated plans', () => {
      const tagsOfNewKey =
        'arn:${AWS::Partition}:apigateway:${AWS::Region}::/tags/arn%3A${AWS::Partition}%3Aapigateway%3A${AWS::Region}%3A%3A%2Fapikeys%2F*';
      const expected = [
        `apigateway:POST ${apiGateway('/apikeys')}`,
        `apigateway:PUT ${tagsOfNewKey}`,
        `apigateway:GET ${apiGateway('/apikeys')}`,
        `apigateway:GET ${apiGateway('/apikeys/*')}`,
        `apigateway:DELETE ${apiGateway('/apikeys/*')}`,
        ...planIds().flatMap((id) => [
          `apigateway:POST ${apiGateway(`/usageplans/\${${id}}/keys`)}`,
          `apigateway:GET ${apiGateway(`/usageplans/\${${id}}`)}`,
          `apigateway:GET ${apiGateway(`/usageplans/\${${id}}/keys/*`)}`,
        ]),
      ];
      expect(planIds()).toHaveLength(tiers.length);
      expect(grants(roleStatements(dev.template, roleId), 'apigateway').sort()).toEqual(expected.sort());
    });

    it('reaches DynamoDB only on the table (not its index) with the saga item actions', () => {
      const tableArn = JSON.stringify(getAtt('KeyplanTable', 'Arn'));
      expect(grants(roleStatements(dev.template, roleId), 'dynamodb').sort()).toEqual(
        [
          'dynamodb:ConditionCheckItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:Query',
          'dynamodb:UpdateItem',
        ].map((action) => `${action} ${tableArn}`),
      );
    });

    it.each([
      ['dev', () => dev],
      ['prod', () => prod],
    ])('in %s sends email only as the sender, through its configuration set if any', (stage, get) => {
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
        ['ses:SendEmail', 'ses:SendRawEmail']
          .flatMap((action) => resources.map((resource) => `${action} ${resource}`))
          .sort(),
      );
      for (const statement of statements.filter((s) => grants([s], 'ses').length > 0)) {
        expect(statement.Condition).toEqual({ StringEquals: { 'ses:FromAddress': sender } });
      }
    });
  });
});
