import type { AwsClients } from '../aws/clients';
import { ConsoleTable } from '../aws/console-table';
import { SqsQueueDepths } from '../aws/console-queues';
import { CustomerLedgerTable } from '../aws/customer-ledger';
import { RegistrationTable } from '../aws/registration-table';
import { ShardTable } from '../aws/shard-table';
import type { Config } from '../config';
import type { CustomerPageDeps } from '../console/customer-page';
import { countKeys } from '../console/key-counts';
import { OVERVIEW_LIST_LIMIT, type OverviewDeps, previewStalled } from '../console/overview';
import { kept } from '../console/refreshing';
import { historyDeps } from './history';
import { clock, registrationTableOptions } from './settings';
import { usageDeps } from './usage';

/** The console reads DynamoDB, API Gateway (GetUsage, paced like the usage route) and SQS. */
export type ConsoleClients = Pick<AwsClients, 'apiGateway' | 'dynamo' | 'sqs'>;

export type ConsoleDeps = OverviewDeps &
  CustomerPageDeps & {
    /** The kept reads: started with the console, dropped after each of its actions. */
    refresh: { prefetch(): void; afterAction(): void };
  };

/**
 * How long the overview shows the same key counts (a read of every key item), stalled
 * registrations and interrupted operations (two index Queries), and failed registrations (a scan)
 * before reading them again, behind the page. Rotations and retirements are daily jobs and the
 * sweep runs every SWEEP_MINUTES: half a minute old is as good as new.
 */
const KEY_COUNTS_MAX_AGE_MS = 30_000;
const FAILURES_MAX_AGE_MS = 60_000;

/**
 * The console's read model: the table (due index, profiles, shard items, failed registrations),
 * the provisioning queue of every shard with its DLQ, GetUsage and the audit trail. Its actions
 * use the CLI's own deps (rotation, customers, provisioning).
 */
export function consoleDeps(config: Config, clients: ConsoleClients): ConsoleDeps {
  const table = new ConsoleTable({ client: clients.dynamo, tableName: config.tableName });
  const registrations = new RegistrationTable({ client: clients.dynamo, ...registrationTableOptions(config) });
  const queueUrls = [config.queueUrl, ...Object.values(config.shardQueueUrls)].filter((url): url is string => Boolean(url));
  const home = config.shards[0]?.id ?? '';
  const keyCounts = kept(() => countKeys(clock(), table, home), KEY_COUNTS_MAX_AGE_MS, clock);
  const failures = kept(() => table.recentFailures(OVERVIEW_LIST_LIMIT), FAILURES_MAX_AGE_MS, clock);
  const ledger = new CustomerLedgerTable({ client: clients.dynamo, tableName: config.tableName });
  const sweep = kept(() => previewStalled(clock(), { stalled: registrations, ledger, clock }), KEY_COUNTS_MAX_AGE_MS, clock);
  return {
    keyCounts: keyCounts.get,
    recentFailures: failures.get,
    sweepPreview: sweep.get,
    refresh: {
      prefetch: () => {
        keyCounts.prefetch();
        sweep.prefetch();
        failures.prefetch();
      },
      afterAction: () => {
        keyCounts.invalidate();
        sweep.invalidate();
      },
    },
    profiles: table,
    queues: new SqsQueueDepths({ client: clients.sqs, queueUrls }),
    registry: new ShardTable({ client: clients.dynamo, tableName: config.tableName }),
    registrations,
    usage: usageDeps(config, clients),
    history: historyDeps(config, clients),
    settings: { shards: config.shards },
  };
}
