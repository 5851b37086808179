// `npm start`: the emulator, the resources the functions need, and the HTTP contract on
// http://127.0.0.1:3000, until Ctrl-C. See DESIGN §5.
import { rm } from 'node:fs/promises';
import { type LocalStack, bootstrapLocalStack, functionEnvironment, MAX_LOCAL_SHARDS } from './bootstrap';
import { type Emulator, startEmulator } from './emulator';
import { startHttpGateway } from './http-gateway';
import { startQueuePoller } from './queue-poller';
import { stateFileLocation, writeFileAtomically } from './state-file';
import { startStreamPoller, streamsApiOf, tableStreamArn } from './stream-poller';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createAwsClients, dynamoStreamsClient } from '../../shared/aws/clients';
import { loadConfig } from '../../shared/config';
import { emulatorEmails } from '../../cli/console/emails';
import { startConsole } from '../../cli/console/server';
import { awsServices } from '../../cli/services';

/** A local stand-in for an event source (e.g. the queue's trigger); returns how to stop it. */
type BackgroundWorker = (stack: LocalStack) => Promise<() => Promise<void>>;

/**
 * Started in this order before the gateway opens its port, so that an open port means everything
 * runs; stopped after the gateway.
 */
const backgroundWorkers: BackgroundWorker[] = [
  // The provisioning queues into the worker, as Lambda's event source mappings do in AWS: the
  // home shard's, and each other shard's own. The handler is imported here, after process.env
  // points at the stack: it reads config at import.
  async (stack) => {
    const { handler } = await import('../../functions/provision-worker/handler');
    const queueUrls = [stack.queueUrl, ...(stack.shards ?? []).flatMap((shard) => (shard.queueUrl ? [shard.queueUrl] : []))];
    const pollers = queueUrls.map((queueUrl) =>
      startQueuePoller({
        sqs: createAwsClients().sqs,
        queueUrl,
        handler,
        region: stack.region,
        log: (line) => console.log(`  ${line}`),
      }),
    );
    return async () => {
      await Promise.all(pollers.map((poller) => poller.stop()));
    };
  },
  // The table's stream into the lifecycle events' publisher, as Lambda's stream trigger does; the
  // events reach the default bus, and through the events tap rule the tap queue.
  async (stack) => {
    const { handler } = await import('../../functions/publish-events/handler');
    const dynamo = new DynamoDBClient({});
    const streams = dynamoStreamsClient();
    const poller = startStreamPoller({
      streams: streamsApiOf(streams),
      streamArn: await tableStreamArn(dynamo, stack.tableName),
      handler,
      log: (line) => console.log(`  ${line}`),
    });
    return async () => {
      await poller.stop();
      for (const client of [dynamo, streams]) client.destroy();
    };
  },
];

const EMULATOR_PORT = 4566;
const HOST = '127.0.0.1';
const stateFile = stateFileLocation(process.env, process.cwd());
const writeState = (local: LocalStack) => writeFileAtomically(stateFile, `${JSON.stringify(local, null, 2)}\n`);

async function main(): Promise<void> {
  const stops: (() => Promise<void>)[] = [];
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const stopOne of stops.reverse()) {
      await stopOne().catch((error: unknown) => console.error('keyplan: while stopping:', error));
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log('\nkeyplan: stopping');
      void stop().then(() => process.exit(0));
    });
  }

  try {
    // A state file of an earlier run describes a stack that is not this one (yet): gone before
    // anything starts, so nobody uses it while this run boots.
    await rm(stateFile, { force: true });
    const port = portSetting('PORT', '3000');

    let endpoint = process.env.AWS_ENDPOINT_URL;
    if (endpoint) {
      console.log(`keyplan: using the AWS endpoint in AWS_ENDPOINT_URL (${endpoint})`);
    } else {
      const emulator = await startLocalEmulator();
      stops.push(() => emulator.stop());
      endpoint = emulator.endpoint;
    }

    const stack = await bootstrapLocalStack({ endpoint, region: process.env.AWS_REGION, shards: localShardCount() });
    Object.assign(process.env, functionEnvironment(stack));

    for (const worker of backgroundWorkers) stops.push(await worker(stack));

    // A script that waits for the port and then reads the state file must find this run's, whole:
    // so it is written (atomically) before the port opens. With PORT=0 the system picks the port
    // as it opens, so there the file follows the port, and a script waits for the file instead.
    if (port !== 0) await writeState({ apiUrl: `http://${HOST}:${port}`, ...stack });
    const gateway = await startHttpGateway({ port, host: HOST, log: (line) => console.log(`  ${line}`) }).catch(
      (error: unknown) => {
        throw (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
          ? new Error(`Port ${port} is in use: stop what uses it, or set PORT to another port.`, { cause: error })
          : error;
      },
    );
    stops.push(() => gateway.close());

    const local: LocalStack = { apiUrl: gateway.url, ...stack };
    if (port === 0) await writeState(local);

    // The operator's console over this stack, in this process (`keyplan console` serves the same).
    const config = loadConfig(process.env);
    const services = awsServices(config);
    const consoleServer = await startConsole({
      services,
      config,
      stack: 'the local stack',
      port: portSetting('KEYPLAN_CONSOLE_PORT', '0'),
      emails: () => emulatorEmails(stack.endpoint),
      log: (line) => console.log(`  ${line}`),
    });
    stops.push(async () => {
      await consoleServer.close();
      services.close();
    });
    printBanner(local, consoleServer.url);
  } catch (error) {
    console.error(`keyplan: could not start: ${error instanceof Error ? error.message : String(error)}`);
    // A stack that did not start leaves no state file: the one written before the port failed to
    // open names a gateway that never ran.
    await rm(stateFile, { force: true }).catch(() => undefined);
    await stop();
    process.exit(1);
  }
}

/**
 * A port setting: PORT, where the HTTP API listens (default 3000), or KEYPLAN_CONSOLE_PORT, where
 * the console listens (default 0: a free port, printed with its token); 0 lets the system pick.
 */
function portSetting(name: 'PORT' | 'KEYPLAN_CONSOLE_PORT', fallback: string): number {
  const raw = process.env[name] || fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`${name} must be a port number from 0 to 65535, not "${raw}"`);
  }
  return port;
}

/** KEYPLAN_SHARDS: how many API Gateway shards the local stack spreads customers over (default 1). */
function localShardCount(): number {
  const raw = process.env.KEYPLAN_SHARDS ?? '1';
  const count = Number(raw);
  if (!Number.isInteger(count) || count < 1 || count > MAX_LOCAL_SHARDS) {
    throw new Error(`KEYPLAN_SHARDS must be a whole number from 1 to ${MAX_LOCAL_SHARDS}, not "${raw}"`);
  }
  return count;
}

function shardLines(local: LocalStack): string {
  if (!local.shards) return '';
  const where = (shard: NonNullable<LocalStack['shards']>[number]) =>
    `${shard.region}${shard.roleArn ? `, account ${shard.roleArn.split(':')[4]} (assumed role)` : ''}`;
  return `\n  shards      ${local.shards.map((shard) => `${shard.id} (${where(shard)})`).join(', ')}`;
}

async function startLocalEmulator(): Promise<Emulator> {
  try {
    return await startEmulator({ port: EMULATOR_PORT });
  } catch (error) {
    if (error instanceof Error && /in use/i.test(error.message)) {
      throw new Error(
        `Port ${EMULATOR_PORT} is in use, so the AWS emulator cannot start. Stop what uses it, or, if it is ` +
          `an emulator you want to use, run: AWS_ENDPOINT_URL=http://127.0.0.1:${EMULATOR_PORT} npm start`,
        { cause: error },
      );
    }
    throw error;
  }
}

function printBanner(local: LocalStack, consoleUrl: string): void {
  const emails =
    `curl -s ${local.endpoint}/moto-api/data.json | python3 -c ` +
    `'import json,sys; [print(m["destinations"]["ToAddresses"], m["subject"], m["body"], sep="\\n", end="\\n\\n") ` +
    `for m in json.load(sys.stdin).get("ses", {}).get("Message", [])]'`;
  console.log(`
keyplan is running
  API         ${local.apiUrl}   (no stage prefix)
  console     ${consoleUrl}   (docs/console.md)
  AWS         ${local.endpoint}   (region ${local.region}, table ${local.tableName})
  usage plans ${Object.entries(local.usagePlans).map(([tier, id]) => `${tier}=${id}`).join(' ')}${shardLines(local)}
  state       ${stateFile}

Try it:
  curl -s -X POST ${local.apiUrl}/registrations -H 'content-type: application/json' -H 'Idempotency-Key: demo-1' -d '{"customerId":"cust-demo","email":"dev@example.com","tier":"free"}'

Sent emails (the emulator keeps them; also browsable at ${local.endpoint}/moto-api/):
  ${emails}

Lifecycle events (published from the table's stream; docs/events.md):
  aws --endpoint-url ${local.endpoint} sqs receive-message --queue-url ${local.eventsTapQueueUrl} --max-number-of-messages 10

Ctrl-C stops everything.`);
}

await main();
