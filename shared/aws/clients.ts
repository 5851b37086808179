import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SESClient } from '@aws-sdk/client-ses';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { MiddlewareStack } from '@smithy/types';
import { countMetric, METRIC } from '../metrics';
import { isThrottling } from './aws-errors';

export interface AwsClients {
  apiGateway: APIGatewayClient;
  /** For CreateApiKey, which must not be repeated blindly (see ApiKeyGateway). */
  apiGatewaySingleAttempt: APIGatewayClient;
  dynamo: DynamoDBDocumentClient;
  ses: SESClient;
  sqs: SQSClient;
}

/**
 * Endpoints come from the SDK's own settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, the
 * shared config file), so AWS, the emulator, or a proxy in front of either is configuration only.
 * API Gateway management calls share a 10 requests/s account budget: the SDK's adaptive retry mode
 * slows down on throttling instead of spending its attempts at full speed.
 */
export function createAwsClients(): AwsClients {
  const dynamo = new DynamoDBClient({});
  const clients = {
    apiGateway: new APIGatewayClient({ retryMode: 'adaptive', maxAttempts: 4 }),
    apiGatewaySingleAttempt: new APIGatewayClient({ maxAttempts: 1 }),
    ses: new SESClient({}),
    sqs: new SQSClient({}),
  };
  for (const client of [...Object.values(clients), dynamo]) countThrottledAttempts(client);
  return {
    ...clients,
    dynamo: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = { middlewareStack: MiddlewareStack<any, any> };

/**
 * Counts every throttled attempt, including those the SDK's retries then got through: a rising
 * count is the early sign of a budget shared with too many callers, well before calls fail.
 * Below the retry middleware (same step, lower priority), so it sees each attempt.
 */
function countThrottledAttempts(client: AnyClient): void {
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
}
