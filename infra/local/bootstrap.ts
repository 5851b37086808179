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
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { SESClient, VerifyEmailIdentityCommand } from '@aws-sdk/client-ses';
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
  restApiId: string;
  stage: string;
  /** tier -> usage plan id */
  usagePlans: Record<string, string>;
  sender: string;
}

export interface BootstrapOptions {
  endpoint: string;
  region?: string;
  stage?: string;
  tableName?: string;
  sender?: string;
}

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
 * Creates what the functions need in the emulator: the table, the queue and its DLQ, a REST API
 * with a stage, one usage plan per tier of infra/tiers.json, and a verified sender. Everything is
 * looked up by name first, so running it again against the same emulator creates nothing new.
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

  try {
    const [queues, restApiId] = await Promise.all([
      ensureQueues(sqs, `keyplan-${stage}`),
      ensureRestApi(apiGateway, `keyplan-${stage}`, stage),
      ensureTable(dynamo, tableName),
      // SES and moto refuse to send from an unverified address; verifying again is a no-op.
      ses.send(new VerifyEmailIdentityCommand({ EmailAddress: sender })),
    ]);
    const usagePlans = await ensureUsagePlans(apiGateway, restApiId, stage);
    return { endpoint, region, tableName, ...queues, restApiId, stage, usagePlans, sender };
  } finally {
    for (const client of [apiGateway, dynamo, sqs, ses]) client.destroy();
  }
}

/** The environment the Lambda functions read (shared/config.ts), pointed at the local stack. */
export function functionEnvironment(stack: LocalStack): Record<string, string> {
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
  };
}

async function ensureTable(dynamo: DynamoDBClient, tableName: string): Promise<void> {
  const { $comment: _comment, TimeToLiveAttribute, ...definition } = await readJson<TableDefinition>('../table.json');
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
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

async function ensureQueues(sqs: SQSClient, prefix: string): Promise<{ queueUrl: string; dlqUrl: string }> {
  const dlqUrl = await ensureQueue(sqs, `${prefix}-provisioning-dlq`, { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) });
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
  const queueUrl = await ensureQueue(sqs, `${prefix}-provisioning`, {
    VisibilityTimeout: String(QUEUE_VISIBILITY_TIMEOUT_SECONDS),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes?.QueueArn, maxReceiveCount: MAX_RECEIVE_COUNT }),
  });
  return { queueUrl, dlqUrl };
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
