import { apiGatewayClients, dynamoClient, sesClient, sqsClient } from '../../shared/aws/clients';
import { type EnqueueConfig, loadEnqueueConfig } from '../../shared/config';
import type { Route } from '../../shared/http/handler';
import { enqueueDeps } from '../../shared/wiring/enqueue';
import { registerRoutes } from './routes';

/**
 * The register function's composition root: the saga and the queue, over both API Gateway clients,
 * DynamoDB, SES and SQS. The handler calls it once per container, at cold start.
 * @throws ConfigError when the configuration is invalid or QUEUE_URL is not set
 */
export function composeRegister(config: EnqueueConfig = loadEnqueueConfig()): Route {
  const clients = { ...apiGatewayClients(), dynamo: dynamoClient(), ses: sesClient(), sqs: sqsClient() };
  return registerRoutes(enqueueDeps(config, clients));
}
