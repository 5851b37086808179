import { eventBridgeClient } from '../../shared/aws/event-bus-client';
import { outboxEventOf } from '../../shared/aws/outbox-stream';
import { type Config, loadConfig } from '../../shared/config';
import { publishEventsDeps } from '../../shared/wiring/events';
import { publishEventsBatchHandler } from './batch';

/**
 * The lifecycle events' publisher's composition root: EventBridge only (Lambda reads the table's
 * stream and brings its records). Called once per container, at cold start.
 */
export function composePublishEvents(config: Config = loadConfig()) {
  return publishEventsBatchHandler({ ...publishEventsDeps(config, { eventBridge: eventBridgeClient() }), eventOf: outboxEventOf });
}
