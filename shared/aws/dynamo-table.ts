import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Where an adapter of the one table (DESIGN §2) reads and writes: the document client and the table's name. */
export interface DynamoTableOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
}

/** The base of every adapter over the one table: its client and table name, kept once for its subclasses too. */
export abstract class DynamoTable {
  protected readonly client: DynamoDBDocumentClient;
  protected readonly table: string;

  constructor(options: DynamoTableOptions) {
    this.client = options.client;
    this.table = options.tableName;
  }
}
