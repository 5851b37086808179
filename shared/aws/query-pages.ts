import {
  type DynamoDBDocumentClient,
  paginateQuery,
  type QueryCommandInput,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { translateDynamoError } from './aws-errors';

/**
 * Every page of a Query, in order, fetched as the caller asks for it (a bounded read must not
 * fetch pages it will not use), with DynamoDB's transient errors translated.
 */
export async function* queryPageStream(
  client: DynamoDBDocumentClient,
  input: QueryCommandInput,
): AsyncGenerator<QueryCommandOutput> {
  try {
    yield* paginateQuery({ client }, input);
  } catch (error) {
    throw translateDynamoError(error);
  }
}

/** Every page of a Query, in order; stop early by returning false from `onPage`. */
export async function queryPages(
  client: DynamoDBDocumentClient,
  input: QueryCommandInput,
  onPage: (page: QueryCommandOutput) => boolean | void,
): Promise<void> {
  for await (const page of queryPageStream(client, input)) {
    if (onPage(page) === false) return;
  }
}
