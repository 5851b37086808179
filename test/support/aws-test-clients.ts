import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SESClient } from '@aws-sdk/client-ses';
import { SQSClient } from '@aws-sdk/client-sqs';

/**
 * Test-only SDK clients bound to one endpoint, whatever AWS_ENDPOINT_URL says: the emulator
 * itself, to read back what really happened while the service under test talks through the
 * fault proxy, or the proxy, to watch one client meet a fault.
 */
export function clientsAt(endpoint: string, options: { region?: string; maxAttempts?: number } = {}) {
  const config = {
    endpoint,
    region: options.region ?? 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
  };
  const dynamoDb = new DynamoDBClient(config);
  return {
    apiGateway: new APIGatewayClient(config),
    dynamoDb,
    dynamo: DynamoDBDocumentClient.from(dynamoDb, { marshallOptions: { removeUndefinedValues: true } }),
    ses: new SESClient(config),
    sqs: new SQSClient(config),
  };
}

export type TestClients = ReturnType<typeof clientsAt>;
