import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type HttpGateway, startHttpGateway } from '../../infra/local/http-gateway';
import { createAwsClients } from '../../shared/aws/clients';
import { EMAIL_PATTERN, ID_PATTERN } from '../../shared/core/schemas';
import { NAME_PATTERN } from '../../shared/provisioning/request-schema';
import { createQueuePair } from '../support/emulator-probe';
import { useLocalStack } from '../support/local-env';
import { useTempFiles } from '../support/temp-files';

const root = fileURLToPath(new URL('../../', import.meta.url));
const DOCUMENT = `${root}openapi.yaml`;
const SCHEMATHESIS = `${root}.keyplan/venv/bin/schemathesis`;

/** Fixed, so a failure found once is found again on every run and on every machine. */
const SEED = 20260107;
/** Per operation and phase; about 40 s in all on a 2-core machine, most of it registrations in moto. */
const MAX_EXAMPLES = 25;
const RUN_TIMEOUT_MS = 240_000;

interface Schema {
  pattern?: string;
  maxLength?: number;
  enum?: string[];
  properties?: Record<string, Schema>;
}

interface OpenApiDocument {
  security?: unknown;
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, Schema>; securitySchemes?: unknown };
}

interface ServerlessFile {
  functions: Record<string, { events?: { http?: { method: string; path: string } }[] }>;
}

const readDocument = async () => parse(await readFile(DOCUMENT, 'utf8')) as OpenApiDocument;

/**
 * The run's configuration. Every check is on (`--checks all` on the command line); the file adds
 * what the command line cannot say. Nothing leaves the machine: schemathesis 4 has no telemetry
 * or upload, no report is asked for, and the example database and the cache are off, so a run
 * writes nothing either.
 */
const CONFIG = `
seed = ${SEED}
# One request at a time: repeatable, and the machine is shared.
workers = 1
continue-on-failure = true
color = false

[cache]
enabled = false

[output.sanitization]
# A local run has no secrets, and the reproducing curl commands are only useful unredacted.
enabled = false

[generation]
max-examples = ${MAX_EXAMPLES}
database = "none"

# The document cannot state that \`from\` is not after \`to\` and at most 90 days before it (two
# parameters at once), so a schema-valid range may be refused with 400 naming \`from\` or \`to\`.
# Everything else positive_data_acceptance checks there stays on.
[[operations]]
include-operation-id = "getCustomerUsage"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

# The audit trail's cursor is opaque: only a nextCursor the service gave out is accepted, so a
# cursor of the documented alphabet may be refused with 400 naming \`cursor\`.
[[operations]]
include-operation-id = "getCustomerEvents"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
`;

/**
 * The document as the local service fulfils it. Deployed, every route takes SigV4 (the document's
 * `sigv4` scheme); the local gateway has no IAM authorization, so schemathesis' authentication
 * checks would only find that out. Everything else is the document as it is.
 */
function localDocument(document: OpenApiDocument): OpenApiDocument {
  const { security: _security, ...rest } = document;
  const { securitySchemes: _schemes, ...components } = document.components;
  return { ...rest, components };
}

/** Runs a command to its end; its stdout and stderr interleaved, as a terminal would show them. */
function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('openapi.yaml', () => {
  it('documents exactly the http events of serverless.yml, the routes the gateway serves', async () => {
    const { paths } = await readDocument();
    // CloudFormation's short tags (!Ref, ...) are unknown to the parser and irrelevant here.
    const service = parse(await readFile(`${root}serverless.yml`, 'utf8'), { logLevel: 'silent' }) as ServerlessFile;
    const served = Object.values(service.functions).flatMap(({ events = [] }) =>
      events.flatMap(({ http }) => (http ? [`${http.method.toUpperCase()} ${http.path}`] : [])),
    );
    const documented = Object.entries(paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );

    expect(documented.sort()).toEqual(served.sort());
  });

  it("states the validators' own patterns and limits, and the tiers of infra/tiers.json", async () => {
    const { schemas } = (await readDocument()).components;
    const registration = schemas.RegistrationRequest?.properties ?? {};
    const tiers = JSON.parse(await readFile(`${root}infra/tiers.json`, 'utf8')) as { tiers: Record<string, unknown> };

    expect(schemas.CustomerId).toMatchObject({ pattern: ID_PATTERN, maxLength: 64 });
    expect(schemas.RegistrationId).toMatchObject({ pattern: ID_PATTERN, maxLength: 128 });
    expect(registration.email).toMatchObject({ pattern: EMAIL_PATTERN, maxLength: 254 });
    expect(registration.name?.pattern).toBe(NAME_PATTERN);
    expect(schemas.Tier?.enum).toEqual(Object.keys(tiers.tiers));
  });
});

describe('the local service against openapi.yaml (schemathesis)', () => {
  useLocalStack();
  const temp = useTempFiles('contract');
  let gateway: HttpGateway;

  beforeAll(async () => {
    // A queue of its own: the 202 answers queue registrations no worker here takes, and they
    // must not reach another test's worker.
    const { queueUrl } = await createQueuePair(createAwsClients().sqs, `contract-${process.pid}-${Date.now()}`);
    process.env.QUEUE_URL = queueUrl;
    // The gateway imports the handlers on first use, with the environment as set above.
    gateway = await startHttpGateway({ port: 0 });
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('answers every generated request as documented: no 5xx, statuses, content types, headers and bodies as the document says', async () => {
    const document = await temp.fileWith('openapi.local.yaml', stringify(localDocument(await readDocument())));
    const config = await temp.fileWith('schemathesis.toml', CONFIG);

    const { code, output } = await run(
      SCHEMATHESIS,
      ['--config-file', config, 'run', document, '--url', gateway.url, '--checks', 'all'],
      {
        // Anything it might leave behind goes to the temporary folder, not the repository.
        cwd: temp.folder.path,
        env: { ...process.env, NO_COLOR: '1', COLUMNS: '120', NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' },
      },
    );

    expect(code, `schemathesis failed (seed ${SEED}):\n${output}`).toBe(0);
    expect(output).toMatch(/Tested: 8/);
  }, RUN_TIMEOUT_MS + 30_000);
});
