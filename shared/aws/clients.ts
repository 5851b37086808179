import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SESClient } from '@aws-sdk/client-ses';
import { SQSClient } from '@aws-sdk/client-sqs';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { ShardUnavailableError } from '../errors';
import { countThrottledAttempts } from './throttled-attempts';

/*
 * One factory per client, so that a function's composition (functions/<name>/composition.ts) builds,
 * and its bundle holds, only the clients it uses. Endpoints come from the SDK's own settings
 * (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, the shared config file), so AWS, the emulator, or a
 * proxy in front of either is configuration only. Every client counts its throttled attempts.
 * EventBridge's factory is apart (event-bus-client.ts), so that the one function using it alone
 * does not bundle the DynamoDB document client this module imports.
 */

/** The DynamoDB document client over the one table; `undefined` attributes are left out. */
export function dynamoClient(): DynamoDBDocumentClient {
  const client = new DynamoDBClient({});
  countThrottledAttempts(client);
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/**
 * DynamoDB Streams, for the CLI's `events --follow` (shared/aws/event-stream-reader.ts); no function
 * calls it (Lambda reads the stream for the publisher). Its endpoint: AWS_ENDPOINT_URL_DYNAMODB_STREAMS,
 * else AWS_ENDPOINT_URL (the emulator serves Streams on its one endpoint).
 */
export function dynamoStreamsClient(): DynamoDBStreamsClient {
  return countThrottledAttempts(new DynamoDBStreamsClient({}));
}

/**
 * Where a shard's API Gateway is, when it is not the function's own account and Region: the
 * Region, and for another account the role keyplan assumes there (with its external id).
 */
export interface ShardLocation {
  id: string;
  region?: string | undefined;
  roleArn?: string | undefined;
  externalId?: string | undefined;
}

/**
 * API Gateway for the idempotent calls. Management calls share a 10 requests/s account budget: the
 * SDK's adaptive retry mode slows down on throttling instead of spending its attempts at full speed.
 */
export function apiGatewayClient(at?: ShardLocation): APIGatewayClient {
  return countThrottledAttempts(new APIGatewayClient({ retryMode: 'adaptive', maxAttempts: 4, ...locate(at) }), at?.id);
}

/** API Gateway with one attempt per call: for CreateApiKey, which must not be repeated blindly (see ApiKeyGateway). */
export function singleAttemptApiGatewayClient(at?: ShardLocation): APIGatewayClient {
  return countThrottledAttempts(new APIGatewayClient({ maxAttempts: 1, ...locate(at) }), at?.id);
}

/** Both API Gateway clients, for the functions that create keys. */
export function apiGatewayClients(at?: ShardLocation): Pick<AwsClients, 'apiGateway' | 'apiGatewaySingleAttempt'> {
  return { apiGateway: apiGatewayClient(at), apiGatewaySingleAttempt: singleAttemptApiGatewayClient(at) };
}

/**
 * A shard's Region and credentials: the function's own without a role; with one, temporary
 * credentials of the role (STS AssumeRole with the external id, renewed before they expire). A
 * role that cannot be assumed fails only that shard's calls, with ShardUnavailableError.
 */
function locate(at: ShardLocation | undefined) {
  if (!at) return {};
  if (!at.roleArn) return { region: at.region };
  const assumed = fromTemporaryCredentials({
    params: { RoleArn: at.roleArn, ExternalId: at.externalId, RoleSessionName: `keyplan-${at.id}` },
    clientConfig: { region: at.region },
  });
  const credentials = async () => {
    try {
      return await assumed();
    } catch (error) {
      throw new ShardUnavailableError(at.id, { cause: error });
    }
  };
  return { region: at.region, credentials };
}

export function sesClient(): SESClient {
  return countThrottledAttempts(new SESClient({}));
}

export function sqsClient(): SQSClient {
  return countThrottledAttempts(new SQSClient({}));
}

export interface AwsClients {
  apiGateway: APIGatewayClient;
  /** For CreateApiKey, which must not be repeated blindly (see ApiKeyGateway). */
  apiGatewaySingleAttempt: APIGatewayClient;
  dynamo: DynamoDBDocumentClient;
  ses: SESClient;
  sqs: SQSClient;
}

/** Every client, for the CLI, the tests and the bench; a function builds only its own (above). */
export function createAwsClients(): AwsClients {
  return { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient(), sqs: sqsClient() };
}
