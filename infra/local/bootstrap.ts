import { readFile } from 'node:fs/promises';
import {
  APIGatewayClient,
  CreateDeploymentCommand,
  CreateResourceCommand,
  CreateRestApiCommand,
  CreateUsagePlanCommand,
  GetResourcesCommand,
  GetRestApisCommand,
  GetStagesCommand,
  GetUsagePlansCommand,
  PutIntegrationCommand,
  PutMethodCommand,
  type QuotaPeriodType,
} from '@aws-sdk/client-api-gateway';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { SESClient, VerifyEmailIdentityCommand } from '@aws-sdk/client-ses';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  SQSClient,
} from '@aws-sdk/client-sqs';

/** What the local bootstrap created; written to .keyplan/local.json (DESIGN §5). */
export interface LocalStack {
  /** The local HTTP gateway, once it runs. */
  apiUrl?: string;
  endpoint: string;
  region: string;
  tableName: string;
  queueUrl: string;
  dlqUrl: string;
  /**
   * Every lifecycle event the publisher puts on the default bus with this stage's source
   * (`keyplan.<stage>`) lands here too, through a rule: a window to watch them (docs/events.md).
   */
  eventsTapQueueUrl: string;
  restApiId: string;
  stage: string;
  /** tier -> usage plan id */
  usagePlans: Record<string, string>;
  sender: string;
  /** With more than one shard: every shard, the home shard (this account and Region) first. */
  shards?: LocalShard[];
}

/** A shard in the emulator: an account and Region of its own, with its stage and plans. */
export interface LocalShard {
  id: string;
  region: string;
  roleArn?: string;
  externalId?: string;
  restApiId: string;
  baseUrl: string;
  plans: Record<string, string>;
  keyCeiling?: number;
  highWaterPercent?: number;
  /** Its own provisioning queue and DLQ (QUEUE_URLS), for every shard but the home one, as deployed. */
  queueUrl?: string;
  dlqUrl?: string;
}

export interface BootstrapOptions {
  endpoint: string;
  region?: string;
  stage?: string;
  tableName?: string;
  sender?: string;
  /**
   * How many shards (KEYPLAN_SHARDS for `npm start`): 1 is a deployment without a shard list. More
   * alternate a second Region of this account and other accounts, whose roles moto lets anyone
   * assume (its AssumeRole credentials act in the role's account).
   */
  shards?: number;
  /** Each shard's key ceiling (10,000 in AWS); low, a test sees shards fill. */
  shardKeyCeiling?: number;
}

/** The shards of the local stack, in order: where each is, in moto's accounts and Regions. */
const LOCAL_SHARDS = [
  { id: 'home' },
  // As deployed, every shard but the home one is reached through its role, in the home account too.
  { id: 'west', account: '123456789012', region: 'us-west-2' },
  { id: 'acct2', account: '222222222222' },
  { id: 'acct3', account: '333333333333', region: 'eu-west-1' },
] as const;
export const MAX_LOCAL_SHARDS = LOCAL_SHARDS.length;
const LOCAL_EXTERNAL_ID = 'keyplan-local';

interface TierDefinition {
  description: string;
  throttle: { rateLimit: number; burstLimit: number };
  quota: { limit: number; period: QuotaPeriodType };
}

type TableDefinition = Omit<CreateTableCommandInput, 'TableName'> & {
  $comment?: string;
  TimeToLiveAttribute?: string;
};

const DLQ_RETENTION_SECONDS = 14 * 24 * 60 * 60;
// Longer than the worker's timeout, so a message is not redelivered while it is being handled.
// As deployed: 6 x the worker's 60 s timeout.
const QUEUE_VISIBILITY_TIMEOUT_SECONDS = 360;
const MAX_RECEIVE_COUNT = 5;

async function readJson<T>(relativePath: string): Promise<T> {
  return JSON.parse(await readFile(new URL(relativePath, import.meta.url), 'utf8')) as T;
}

/**
 * Creates what the functions need in the emulator: the table (with its stream), the queue and its
 * DLQ, a REST API with a stage, one usage plan per tier of infra/tiers.json, a verified sender,
 * and the events tap (a rule on the default bus sending this stage's lifecycle events to a queue).
 * Everything is looked up by name first (or put as it should be), so running it again against the
 * same emulator creates nothing new.
 */
export async function bootstrapLocalStack(opts: BootstrapOptions): Promise<LocalStack> {
  const {
    endpoint,
    region = 'us-east-1',
    stage = 'local',
    tableName = 'keyplan-local',
    sender = 'keys@keyplan.local',
  } = opts;
  const clientConfig = { endpoint, region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  const apiGateway = new APIGatewayClient(clientConfig);
  const dynamo = new DynamoDBClient(clientConfig);
  const sqs = new SQSClient(clientConfig);
  const ses = new SESClient(clientConfig);
  const eventBridge = new EventBridgeClient(clientConfig);

  try {
    const [queues, restApiId, , , eventsTapQueueUrl] = await Promise.all([
      ensureQueues(sqs, `keyplan-${stage}`),
      ensureRestApi(apiGateway, `keyplan-${stage}`, stage),
      ensureTable(dynamo, tableName),
      // SES and moto refuse to send from an unverified address; verifying again is a no-op.
      ses.send(new VerifyEmailIdentityCommand({ EmailAddress: sender })),
      ensureEventsTap(eventBridge, sqs, stage),
    ]);
    const usagePlans = await ensureUsagePlans(apiGateway, restApiId, stage);
    const stack: LocalStack = { endpoint, region, tableName, ...queues, eventsTapQueueUrl, restApiId, stage, usagePlans, sender };
    const count = opts.shards ?? 1;
    if (count > 1) {
      if (count > MAX_LOCAL_SHARDS) throw new Error(`the local stack has at most ${MAX_LOCAL_SHARDS} shards`);
      stack.shards = [];
      for (const [index, where] of LOCAL_SHARDS.slice(0, count).entries()) {
        const shardRegion = 'region' in where ? where.region : region;
        const roleArn = 'account' in where ? `arn:aws:iam::${where.account}:role/keyplan-shard-${stage}` : undefined;
        const client =
          index === 0
            ? apiGateway
            : new APIGatewayClient({
                ...clientConfig,
                region: shardRegion,
                ...(roleArn
                  ? {
                      credentials: fromTemporaryCredentials({
                        params: { RoleArn: roleArn, ExternalId: LOCAL_EXTERNAL_ID, RoleSessionName: 'keyplan-bootstrap' },
                        clientConfig,
                      }),
                    }
                  : {}),
              });
        try {
          const apiId = index === 0 ? restApiId : await ensureRestApi(client, `keyplan-${stage}`, stage);
          const plans = index === 0 ? usagePlans : await ensureUsagePlans(client, apiId, stage);
          // The home shard's queue is the stack's; every other shard has its own, as deployed.
          const shardQueues = index === 0 ? {} : await ensureQueues(sqs, `keyplan-${stage}`, where.id);
          stack.shards.push({
            id: where.id,
            region: shardRegion,
            ...(roleArn ? { roleArn, externalId: LOCAL_EXTERNAL_ID } : {}),
            restApiId: apiId,
            baseUrl: `https://${apiId}.execute-api.${shardRegion}.amazonaws.com/${stage}`,
            plans,
            ...(opts.shardKeyCeiling ? { keyCeiling: opts.shardKeyCeiling } : {}),
            ...shardQueues,
          });
        } finally {
          if (client !== apiGateway) client.destroy();
        }
      }
    }
    return stack;
  } finally {
    for (const client of [apiGateway, dynamo, sqs, ses, eventBridge]) client.destroy();
  }
}

/** The environment the Lambda functions read (shared/config.ts), pointed at the local stack. */
export function functionEnvironment(
  stack: Pick<LocalStack, 'tableName' | 'usagePlans' | 'sender' | 'queueUrl' | 'endpoint' | 'region' | 'stage' | 'shards'>,
): Record<string, string> {
  return {
    TABLE_NAME: stack.tableName,
    TIER_MAP: JSON.stringify(stack.usagePlans),
    SENDER_EMAIL: stack.sender,
    QUEUE_URL: stack.queueUrl,
    AWS_ENDPOINT_URL: stack.endpoint,
    AWS_REGION: stack.region,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    POWERTOOLS_SERVICE_NAME: 'keyplan',
    // The source the events tap's rule matches (the functions' own default is keyplan.<STAGE>,
    // and the local functions run without STAGE).
    EVENT_SOURCE: eventSourceOf(stack.stage),
    ...(stack.shards ? { SHARDS: JSON.stringify(stack.shards.map(toShardSetting)) } : {}),
    ...queueUrlsSetting(stack.shards),
  };
}

/** QUEUE_URLS: the queue of each shard that has its own (every shard but the home one). */
function queueUrlsSetting(shards: readonly LocalShard[] | undefined): { QUEUE_URLS?: string } {
  const urls = (shards ?? []).flatMap((shard) => (shard.queueUrl ? [[shard.id, shard.queueUrl] as const] : []));
  return urls.length === 0 ? {} : { QUEUE_URLS: JSON.stringify(Object.fromEntries(urls)) };
}

/** A local shard as SHARDS lists it (shared/config.ts): the home shard names no Region or role. */
function toShardSetting(shard: LocalShard, index: number) {
  const { restApiId: _restApiId, queueUrl: _queueUrl, dlqUrl: _dlqUrl, ...setting } = shard;
  return index === 0 ? { ...setting, region: undefined } : setting;
}

/** The source of a stage's lifecycle events, as deployed (infra/serverless/lifecycle-events.js). */
export const eventSourceOf = (stage: string) => `keyplan.${stage}`;

async function ensureTable(dynamo: DynamoDBClient, tableName: string): Promise<void> {
  const { $comment: _comment, TimeToLiveAttribute, ...definition } = await readJson<TableDefinition>('../table.json');
  try {
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
    // A table made before the stream was part of the definition (a long-lived emulator) gets it.
    const stream = definition.StreamSpecification;
    if (stream?.StreamEnabled && !Table?.StreamSpecification?.StreamEnabled) {
      await dynamo.send(new UpdateTableCommand({ TableName: tableName, StreamSpecification: stream }));
    }
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    await dynamo.send(new CreateTableCommand({ ...definition, TableName: tableName }));
  }
  if (!TimeToLiveAttribute) return;
  // Enabling TTL when it is already enabled is an error in DynamoDB.
  const { TimeToLiveDescription } = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
  if (TimeToLiveDescription?.TimeToLiveStatus === 'ENABLED') return;
  await dynamo.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: TimeToLiveAttribute, Enabled: true },
    }),
  );
}

/** `<prefix>-provisioning` and its DLQ; a shard's own are `<prefix>-provisioning-<shard>`, as deployed. */
async function ensureQueues(sqs: SQSClient, prefix: string, shard?: string): Promise<{ queueUrl: string; dlqUrl: string }> {
  const name = shard ? `${prefix}-provisioning-${shard}` : `${prefix}-provisioning`;
  const dlqUrl = await ensureQueue(sqs, `${name}-dlq`, { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) });
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
  const queueUrl = await ensureQueue(sqs, name, {
    VisibilityTimeout: String(QUEUE_VISIBILITY_TIMEOUT_SECONDS),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes?.QueueArn, maxReceiveCount: MAX_RECEIVE_COUNT }),
  });
  return { queueUrl, dlqUrl };
}

/**
 * The queue `keyplan-<stage>-events-tap` and the rule that sends it every event of the stage's
 * source on the default bus (where the publisher puts them locally). PutRule and PutTargets set
 * the rule and its target as given, whether they existed or not.
 */
async function ensureEventsTap(eventBridge: EventBridgeClient, sqs: SQSClient, stage: string): Promise<string> {
  const name = `keyplan-${stage}-events-tap`;
  const queueUrl = await ensureQueue(sqs, name, {});
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  await eventBridge.send(
    new PutRuleCommand({
      Name: name,
      EventBusName: 'default',
      EventPattern: JSON.stringify({ source: [eventSourceOf(stage)] }),
      State: 'ENABLED',
      Description: `keyplan's ${stage} lifecycle events, to the ${name} queue`,
    }),
  );
  await eventBridge.send(
    new PutTargetsCommand({ Rule: name, EventBusName: 'default', Targets: [{ Id: 'events-tap', Arn: Attributes?.QueueArn }] }),
  );
  return queueUrl;
}

async function ensureQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<string> {
  try {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (QueueUrl) return QueueUrl;
  } catch (error) {
    if (!(error instanceof QueueDoesNotExist)) throw error;
  }
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!QueueUrl) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  return QueueUrl;
}

async function ensureRestApi(apiGateway: APIGatewayClient, name: string, stage: string): Promise<string> {
  const { items: apis = [] } = await apiGateway.send(new GetRestApisCommand({ limit: 500 }));
  let restApiId = apis.find((api) => api.name === name)?.id;
  if (!restApiId) {
    ({ id: restApiId } = await apiGateway.send(
      new CreateRestApiCommand({ name, description: 'keyplan local: the stage the usage plans apply to' }),
    ));
    if (!restApiId) throw new Error(`CreateRestApi ${name} returned no id`);
  }

  // A deployment needs at least one method; a MOCK one stands in for the APIs whose keys we manage.
  const { items: resources = [] } = await apiGateway.send(new GetResourcesCommand({ restApiId, limit: 500 }));
  if (!resources.some((resource) => resource.path === '/ping')) {
    const rootId = resources.find((resource) => resource.path === '/')?.id;
    const { id: resourceId } = await apiGateway.send(
      new CreateResourceCommand({ restApiId, parentId: rootId, pathPart: 'ping' }),
    );
    const method = { restApiId, resourceId, httpMethod: 'GET' };
    await apiGateway.send(new PutMethodCommand({ ...method, authorizationType: 'NONE', apiKeyRequired: true }));
    await apiGateway.send(
      new PutIntegrationCommand({
        ...method,
        type: 'MOCK',
        requestTemplates: { 'application/json': '{"statusCode": 200}' },
      }),
    );
  }

  const { item: stages = [] } = await apiGateway.send(new GetStagesCommand({ restApiId }));
  if (!stages.some((existing) => existing.stageName === stage)) {
    await apiGateway.send(new CreateDeploymentCommand({ restApiId, stageName: stage }));
  }
  return restApiId;
}

async function ensureUsagePlans(
  apiGateway: APIGatewayClient,
  apiId: string,
  stage: string,
): Promise<Record<string, string>> {
  const { tiers } = await readJson<{ tiers: Record<string, TierDefinition> }>('../tiers.json');
  const { items: existing = [] } = await apiGateway.send(new GetUsagePlansCommand({ limit: 500 }));
  const usagePlans: Record<string, string> = {};
  for (const [tier, definition] of Object.entries(tiers)) {
    const name = `keyplan-${tier}`;
    let id = existing.find((plan) => plan.name === name)?.id;
    if (!id) {
      ({ id } = await apiGateway.send(
        new CreateUsagePlanCommand({
          name,
          description: definition.description,
          throttle: definition.throttle,
          quota: definition.quota,
          apiStages: [{ apiId, stage }],
        }),
      ));
      if (!id) throw new Error(`CreateUsagePlan ${name} returned no id`);
    }
    usagePlans[tier] = id;
  }
  return usagePlans;
}
