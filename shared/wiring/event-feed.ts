import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { EventFeed } from '../audit/event-feed';
import type { AwsClients } from '../aws/clients';
import { EventStreamReader } from '../aws/event-stream-reader';
import type { Config } from '../config';

/** The table (to find its stream) and DynamoDB Streams (to read it). */
export interface EventFeedClients extends Pick<AwsClients, 'dynamo'> {
  dynamoStreams: DynamoDBStreamsClient;
}

/** Every customer's lifecycle events as they commit: the table's stream, read from its end. */
export function eventFeed(config: Config, clients: EventFeedClients): EventFeed {
  return new EventStreamReader({ dynamo: clients.dynamo, streams: clients.dynamoStreams, tableName: config.tableName });
}
