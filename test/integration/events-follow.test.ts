import { GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { functionEnvironment } from '../../infra/local/bootstrap';
import { type CliIo, runKeyplan } from '../../cli/run-keyplan';
import { createAwsClients } from '../../shared/aws/clients';
import { loadConfig } from '../../shared/config';
import type { RecordedEvent } from '../../shared/core/events';
import { provisionKey } from '../../shared/provisioning/provision-key';
import { createProvisioningDeps } from '../../shared/wiring/compose';

const stack = inject('localStack');
const RUN = `${process.pid}-${Date.now().toString(36)}`;

/** Resolves once `check` holds, polled every 50 ms; fails after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * `keyplan events --follow ARGS` in this process, against the emulator through the environment, as
 * an operator runs it; Ctrl-C is `interrupt()`. Other test files use the same table meanwhile, so
 * `linesOf` keeps one customer's lines.
 */
function follow(args: string[] = []) {
  let stdout = '';
  let stderr = '';
  let stop: (() => void) | undefined;
  const io: CliIo = {
    argv: ['events', '--follow', ...args],
    env: { ...process.env },
    cwd: process.cwd(),
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += String(text)), isTTY: false } as unknown as CliIo['stderr'],
    onInterrupt: (onStop) => {
      stop = onStop;
      return () => (stop = undefined);
    },
  };
  const exited = runKeyplan(io);
  return {
    exited,
    started: () => until(() => stderr.includes('Ctrl-C stops'), `the follower to start (stderr: ${stderr})`),
    linesOf: (customerId: string) => stdout.split('\n').filter((line) => line.includes(customerId)),
    output: () => ({ stdout, stderr }),
    interrupt: () => stop?.(),
  };
}

/** A registration made by the use case itself, as `POST /registrations` makes it: its key's value too. */
async function provision(customerId: string): Promise<{ keyId: string; keyValue: string }> {
  const config = loadConfig({ ...functionEnvironment(stack), MANAGEMENT_CALLS_PER_SECOND: '500' });
  const { registration } = await provisionKey(
    { registrationId: customerId, request: { customerId, email: `${customerId}@example.com`, tier: 'free' }, now: new Date() },
    createProvisioningDeps(config),
  );
  const keyId = registration.keyId!;
  const { value } = await createAwsClients().apiGateway.send(new GetApiKeyCommand({ apiKey: keyId, includeValue: true }));
  return { keyId, keyValue: value! };
}

beforeAll(() => {
  // The SDK's clients take their endpoint and credentials from the process's environment.
  Object.assign(process.env, functionEnvironment(stack));
});

describe('keyplan events --follow against the emulator', () => {
  it('has a table with a stream of new images to follow', async () => {
    const { Table } = await createAwsClients().dynamo.send(new DescribeTableCommand({ TableName: stack.tableName }));

    expect(Table?.StreamSpecification).toEqual({ StreamEnabled: true, StreamViewType: 'NEW_IMAGE' });
  });

  it('prints the events of a registration made while it follows, in order, never the key value, and stops cleanly on Ctrl-C', async () => {
    // Prepare: a registration committed before the start is not shown
    const earlier = `follow-before-${RUN}`;
    await provision(earlier);
    const customerId = `follow-${RUN}`;
    const following = follow();
    await following.started();

    // Act
    const { keyId, keyValue } = await provision(customerId);
    await until(() => following.linesOf(customerId).length >= 2, "the registration's two events");
    following.interrupt();
    const code = await following.exited;

    // Assess
    expect(code).toBe(0);
    const lines = following.linesOf(customerId);
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ +1  ${customerId}  KeyProvisioned +keyId=${keyId} tier=free `)),
      expect.stringMatching(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ +2  ${customerId}  KeyEmailed +keyId=${keyId} `)),
    ]);
    const { stdout, stderr } = following.output();
    expect(following.linesOf(earlier)).toEqual([]);
    expect(stdout + stderr).not.toContain(keyValue);
    expect(stderr).toMatch(/keyplan events: stopped after \d+ events?\n$/);
  });

  it('with --json prints one JSON object per line: the event whole, as the outbox recorded it', async () => {
    // Prepare
    const customerId = `follow-json-${RUN}`;
    const following = follow(['--json']);
    await following.started();

    // Act
    const { keyId, keyValue } = await provision(customerId);
    await until(() => following.linesOf(customerId).length >= 2, "the registration's two events");
    following.interrupt();
    const code = await following.exited;

    // Assess
    expect(code).toBe(0);
    const events = following.linesOf(customerId).map((line) => JSON.parse(line) as RecordedEvent);
    expect(events.map((event) => [event.sequence, event.type, event.detail.keyId])).toEqual([
      [1, 'KeyProvisioned', keyId],
      [2, 'KeyEmailed', keyId],
    ]);
    for (const event of events) {
      expect(Object.keys(event).sort()).toEqual(['correlationId', 'customerId', 'detail', 'eventId', 'sequence', 'time', 'type']);
    }
    expect(following.output().stdout).not.toContain(keyValue);
  });

  it('reads DynamoDB Streams at AWS_ENDPOINT_URL_DYNAMODB_STREAMS when that is set, like every client', async () => {
    // Prepare: Streams pointed at a port where nothing listens; DynamoDB itself still at the emulator
    process.env.AWS_ENDPOINT_URL_DYNAMODB_STREAMS = 'http://127.0.0.1:9';

    const following = follow();

    // Act
    const code = await following.exited.finally(() => delete process.env.AWS_ENDPOINT_URL_DYNAMODB_STREAMS);

    // Assess: the table was found; its stream could not be reached
    expect(code).toBe(2);
    expect(following.output().stderr).toMatch(/keyplan events: cannot reach AWS \(ECONNREFUSED\)/);
  });
});
