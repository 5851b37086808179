import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SESClient } from '@aws-sdk/client-ses';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { MiddlewareStack } from '@smithy/types';
import { countMetric, METRIC } from '../metrics';
import { isThrottling } from './aws-errors';

/*
 * One factory per client, so that a function's composition (functions/<name>/composition.ts) builds,
 * and its bundle holds, only the clients it uses. Endpoints come from the SDK's own settings
 * (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, the shared config file), so AWS, the emulator, or a
 * proxy in front of either is configuration only. Every client counts its throttled attempts.
 */

/** The DynamoDB document client over the one table; `undefined` attributes are left out. */
export function dynamoClient(): DynamoDBDocumentClient {
  const client = new DynamoDBClient({});
  countThrottledAttempts(client);
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/**
 * API Gateway for the idempotent calls. Management calls share a 10 requests/s account budget: the
 * SDK's adaptive retry mode slows down on throttling instead of spending its attempts at full speed.
 */
export function apiGatewayClient(): APIGatewayClient {
  return countThrottledAttempts(new APIGatewayClient({ retryMode: 'adaptive', maxAttempts: 4 }));
}

/** API Gateway with one attempt per call: for CreateApiKey, which must not be repeated blindly (see ApiKeyGateway). */
export function singleAttemptApiGatewayClient(): APIGatewayClient {
  return countThrottledAttempts(new APIGatewayClient({ maxAttempts: 1 }));
}

/** Both API Gateway clients, for the functions that create keys. */
export function apiGatewayClients(): Pick<AwsClients, 'apiGateway' | 'apiGatewaySingleAttempt'> {
  return { apiGateway: apiGatewayClient(), apiGatewaySingleAttempt: singleAttemptApiGatewayClient() };
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

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = { middlewareStack: MiddlewareStack<any, any> };

/**
 * Counts every throttled attempt, including those the SDK's retries then got through: a rising
 * count is the early sign of a budget shared with too many callers, well before calls fail.
 * Below the retry middleware (same step, lower priority), so it sees each attempt.
 */
function countThrottledAttempts<C extends AnyClient>(client: C): C {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (isThrottling(error)) countMetric(METRIC.throttles);
        throw error;
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: 'keyplanCountThrottles' },
  );
  return client;
}
