import {
  type DynamoDBDocumentClient,
  paginateQuery,
  type QueryCommandInput,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { translateDynamoError } from './aws-errors';

/**
 * Every page of a Query, in order, with DynamoDB's transient errors translated. Stop early by
 * returning false from `onPage` (a bounded read must not fetch pages it will not use).
 */
export async function queryPages(
  client: DynamoDBDocumentClient,
  input: QueryCommandInput,
  onPage: (page: QueryCommandOutput) => boolean | void,
): Promise<void> {
  try {
    for await (const page of paginateQuery({ client }, input)) {
      if (onPage(page) === false) return;
    }
  } catch (error) {
    throw translateDynamoError(error);
  }
}
