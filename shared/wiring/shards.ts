import { ShardTable } from '../aws/shard-table';
import type { CoreConfig } from '../config';
import type { DrainDeps } from '../shards/drain-shard';
import type { SagaClients } from './provisioning';
import { rotationDeps } from './rotation';

/** Draining a shard is rotating its keys into others: the rotation's deps and the shard items. */
export function drainDeps(config: CoreConfig, clients: SagaClients): DrainDeps {
  return { ...rotationDeps(config, clients), registry: new ShardTable({ client: clients.dynamo, tableName: config.tableName }) };
}
