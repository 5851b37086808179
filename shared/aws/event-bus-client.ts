import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { countThrottledAttempts } from './throttled-attempts';

/*
 * EventBridge's client factory, apart from clients.ts: its one user, the lifecycle events'
 * publisher, calls nothing else, and clients.ts imports the DynamoDB document client, whose package
 * (@aws-sdk/lib-dynamodb) is not marked free of side effects, so importing it would bundle the
 * whole DynamoDB client (about 30 KiB) into a function that never calls DynamoDB.
 */

/** EventBridge, for the lifecycle events' publisher (shared/aws/eventbridge-bus.ts). */
export function eventBridgeClient(): EventBridgeClient {
  return countThrottledAttempts(new EventBridgeClient({}));
}
