import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SESClient } from '@aws-sdk/client-ses';
import { SQSClient } from '@aws-sdk/client-sqs';

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
  return {
    apiGateway: new APIGatewayClient({ retryMode: 'adaptive', maxAttempts: 4 }),
    apiGatewaySingleAttempt: new APIGatewayClient({ maxAttempts: 1 }),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    ses: new SESClient({}),
    sqs: new SQSClient({}),
  };
}
