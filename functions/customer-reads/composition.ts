import { dynamoClient } from '../../shared/aws/clients';
import { type CoreConfig, loadCoreConfig } from '../../shared/config';
import type { Route } from '../../shared/http/handler';
import { readDeps } from '../../shared/wiring/reads';
import { customerReadRoutes } from './routes';

/**
 * The read routes' composition root: DynamoDB alone (no API Gateway, SES or SQS client). The
 * handler calls it once per container, at cold start.
 */
export function composeCustomerReads(config: CoreConfig = loadCoreConfig()): Route {
  return customerReadRoutes(readDeps(config, { dynamo: dynamoClient() }));
}
