import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { EventBridgeBus } from '../aws/eventbridge-bus';
import type { Config } from '../config';
import type { PublishDeps } from '../events/publish-events';

/** The lifecycle events' publisher calls EventBridge only: the stream's records come with the invocation. */
export interface EventClients {
  eventBridge: EventBridgeClient;
}

/** The bus of EVENT_BUS_NAME, every event with the source EVENT_SOURCE. */
export function publishEventsDeps(config: Config, clients: EventClients): PublishDeps {
  return { bus: new EventBridgeBus({ client: clients.eventBridge, busName: config.eventBusName, source: config.eventSource }) };
}
