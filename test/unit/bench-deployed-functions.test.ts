import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDeployedFunctions } from '../../bench/deployed-functions';

// A serverless.yml in the shape of the repository's, with each kind of variable the bench resolves
// and the kinds it leaves to the deploy.
const SERVERLESS_YML = `
service: demo
params:
  default:
    budget: 10
    workers: 2
    lease: 90
  prod:
    lease: 120
custom:
  split: \${file(split.mjs):split}
provider:
  name: aws
  environment:
    TABLE_NAME: !Ref Table
    SERVICE: \${self:service}-\${sls:stage}
    BUDGET: \${param:budget}
    LEASE_SECONDS: \${param:lease}
    REGION: \${opt:region, 'us-east-1'}
    TIERS: \${file(tiers.json):map}
    UNKNOWN: \${ssm:/demo/value}
functions:
  register:
    handler: functions/register/handler.handler
    reservedConcurrency: \${self:custom.split.register.concurrency}
    environment:
      SHARE: \${self:custom.split.register.share}
      QUEUE_URL: !Ref Queue
  worker:
    handler: functions/worker/handler.handler
    timeout: 60
    environment:
      LEASE_SECONDS: 60
    events:
      - sqs:
          arn: !GetAtt Queue.Arn
          batchSize: 5
          maximumConcurrency: \${param:workers}
  job:
    handler: functions/job/handler.handler
resources:
  - Resources:
      Table:
        Type: AWS::DynamoDB::Table
  - \${file(queue.mjs):resources}
`;

// A queue whose settings derive from its consumer's, as infra/serverless/queues.js derives them.
const QUEUE_MJS = `
export async function resources({ resolveVariable }) {
  const timeout = Number(await resolveVariable('self:functions.worker.timeout'));
  return {
    Resources: {
      Queue: {
        Type: 'AWS::SQS::Queue',
        Properties: {
          VisibilityTimeout: 6 * timeout,
          RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': ['Dlq', 'Arn'] }, maxReceiveCount: 5 },
        },
      },
    },
  };
}
`;

// Called as the framework calls a ${file(x.js):name} function: with a variable resolver.
const SPLIT_MJS = `
export async function split({ resolveVariable }) {
  const budget = Number(await resolveVariable('param:budget'));
  return { register: { share: budget / 4, concurrency: 5 } };
}
`;

describe('readDeployedFunctions (how the mixed load figure runs each function)', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-deployed-'));
    file = join(dir, 'serverless.yml');
    await writeFile(file, SERVERLESS_YML);
    await writeFile(join(dir, 'split.mjs'), SPLIT_MJS);
    await writeFile(join(dir, 'queue.mjs'), QUEUE_MJS);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves params, self and stage references, defaults and JavaScript files, and leaves out the rest', async () => {
    const { register } = await readDeployedFunctions(['register'], { file });

    expect(register).toEqual({
      name: 'register',
      environment: { SERVICE: 'demo-dev', BUDGET: '10', LEASE_SECONDS: '90', REGION: 'us-east-1', SHARE: '2.5' },
      concurrency: 5,
    });
  });

  it("takes the stage's params over the defaults, and the function's environment over the provider's", async () => {
    const { worker } = await readDeployedFunctions(['worker'], { file, stage: 'prod' });
    expect(worker?.environment).toMatchObject({ SERVICE: 'demo-prod', LEASE_SECONDS: '60' });

    const { job } = await readDeployedFunctions(['job'], { file, stage: 'prod' });
    expect(job?.environment.LEASE_SECONDS).toBe('120');
  });

  it("takes a queue consumer's cap from its trigger, and none when Lambda sets none", async () => {
    const functions = await readDeployedFunctions(['worker', 'job'], { file });
    expect(functions.worker?.concurrency).toBe(2);
    expect(functions.job?.concurrency).toBeUndefined();
  });

  it("reads the function's timeout and its trigger queue's settings from the stack's resources", async () => {
    const { worker, job } = await readDeployedFunctions(['worker', 'job'], { file });

    expect(worker?.timeout).toBe(60);
    expect(worker?.batchSize).toBe(5);
    expect(worker?.queue).toEqual({ logicalId: 'Queue', visibilityTimeout: 360, maxReceiveCount: 5 });
    expect(job).toMatchObject({ timeout: undefined, queue: undefined, batchSize: undefined });
  });

  it('skips the names it is told to, and refuses a function the file does not define', async () => {
    const { register } = await readDeployedFunctions(['register'], { file, skip: new Set(['BUDGET', 'SHARE']) });
    expect(register?.environment).not.toHaveProperty('BUDGET');
    expect(register?.environment).not.toHaveProperty('SHARE');
    await expect(readDeployedFunctions(['missing'], { file })).rejects.toThrow(/no function missing/);
  });

  it("reads the repository's serverless.yml: the functions of the mixed load exist and resolve", async () => {
    const functions = await readDeployedFunctions(['register', 'provisionWorker', 'rotateKeys', 'changeTierEvents']);
    expect(functions.provisionWorker?.concurrency).toBeGreaterThanOrEqual(2);
    expect(functions.rotateKeys?.environment.ROTATION_BATCH_SIZE).toMatch(/^\d+$/);
    expect(functions.register?.environment.MANAGEMENT_CALLS_PER_SECOND).toMatch(/^\d+(\.\d+)?$/);
    // The queues' delivery settings, which the bench gives its own queues.
    for (const name of ['provisionWorker', 'changeTierEvents'] as const) {
      const { timeout, queue } = functions[name]!;
      expect(queue?.visibilityTimeout).toBeGreaterThan(timeout ?? Number.POSITIVE_INFINITY);
      expect(queue?.maxReceiveCount).toBeGreaterThan(0);
    }
  });
});
