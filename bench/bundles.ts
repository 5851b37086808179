import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { parse } from 'yaml';
import { repoRoot } from './child';

/** What the deploy bundles, read from serverless.yml so the bench cannot drift from it. */
export interface DeploySettings {
  /** esbuild options as serverless-esbuild passes them (custom.esbuild over the plugin's defaults). */
  esbuild: BuildOptions;
  outExtension: string;
  /** provider.environment.NODE_OPTIONS: how Lambda starts Node for every function. */
  nodeOptions: string;
  functions: { name: string; entry: string }[];
}

// custom.esbuild keys that configure the serverless-esbuild plugin, not esbuild; the plugin drops
// them before calling esbuild (serverless-esbuild/dist/bundle.js).
const PLUGIN_ONLY_KEYS = [
  'concurrency', 'zipConcurrency', 'exclude', 'nativeZip', 'packager', 'packagePath', 'watch',
  'keepOutputDirectory', 'packagerOptions', 'installExtraArgs', 'outputFileExtension', 'outputBuildFolder',
  'outputWorkFolder', 'nodeExternals', 'skipBuild', 'skipRebuild', 'skipBuildExcludeFns',
  'stripEntryResolveExtensions', 'disposeContext', 'config',
];
/** The plugin's own defaults, which custom.esbuild overrides. */
const PLUGIN_DEFAULTS: BuildOptions = { bundle: true, target: 'node18', platform: 'node' };

interface ServerlessFile {
  provider?: { environment?: Record<string, unknown> };
  custom?: { esbuild?: Record<string, unknown> };
  functions?: Record<string, { handler?: string }>;
}

export async function readDeploySettings(): Promise<DeploySettings> {
  // CloudFormation's short tags (!Ref, ...) only appear in values the bench does not read.
  const service = parse(await readFile(join(repoRoot, 'serverless.yml'), 'utf8'), { logLevel: 'error' }) as ServerlessFile;
  const custom = { ...service.custom?.esbuild };
  const exclude = Array.isArray(custom.exclude) ? (custom.exclude as string[]) : ['aws-sdk'];
  const outExtension = typeof custom.outputFileExtension === 'string' ? custom.outputFileExtension : '.js';
  for (const key of PLUGIN_ONLY_KEYS) delete custom[key];
  const esbuild: BuildOptions = {
    ...PLUGIN_DEFAULTS,
    ...(custom as BuildOptions),
    external: [...((custom.external as string[] | undefined) ?? []), ...exclude.filter((name) => name !== '*')],
  };
  const functions = Object.entries(service.functions ?? {}).map(([name, definition]) => {
    const handler = definition.handler ?? '';
    return { name, entry: `${handler.slice(0, handler.lastIndexOf('.'))}.ts` };
  });
  return { esbuild, outExtension, nodeOptions: String(service.provider?.environment?.NODE_OPTIONS ?? ''), functions };
}

export interface Bundle {
  file: string;
  /** The minified .mjs alone; the linked source map is a separate file Lambda never loads unless asked. */
  bytes: number;
  mapBytes: number;
  /** Bytes in the output per package (`@aws-sdk/client-dynamodb`, `zod`, ...) and `keyplan` for our own code. */
  bytesByPackage: Record<string, number>;
  /** The AWS SDK client packages in the bundle: what its baseline must hold. */
  clientPackages: string[];
}

/** Builds one function exactly as the deploy would (same options, same output extension). */
export async function bundleFunction(settings: DeploySettings, entry: string, outdir: string): Promise<Bundle> {
  const result = await build({
    ...settings.esbuild,
    entryPoints: [join(repoRoot, entry)],
    outdir,
    outExtension: { '.js': settings.outExtension },
    absWorkingDir: repoRoot,
    metafile: true,
    logLevel: 'error',
  });
  return describe(result.metafile, settings.outExtension);
}

/**
 * How keyplan constructs each client (shared/aws/clients.ts), so the baseline's init does the same
 * SDK work: API Gateway twice (adaptive retries, and single-attempt for CreateApiKey), DynamoDB
 * wrapped in the document client.
 */
const CLIENT_CONSTRUCTION: Record<string, { imports: string; construct: string[] }> = {
  '@aws-sdk/client-api-gateway': {
    imports: "import { APIGatewayClient } from '@aws-sdk/client-api-gateway';",
    construct: ["new APIGatewayClient({ retryMode: 'adaptive', maxAttempts: 4 })", 'new APIGatewayClient({ maxAttempts: 1 })'],
  },
  '@aws-sdk/client-dynamodb': {
    imports: "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
    construct: ['new DynamoDBClient({})'],
  },
  '@aws-sdk/lib-dynamodb': {
    imports: "import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';",
    construct: ['DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } })'],
  },
  '@aws-sdk/client-ses': { imports: "import { SESClient } from '@aws-sdk/client-ses';", construct: ['new SESClient({})'] },
  '@aws-sdk/client-sqs': { imports: "import { SQSClient } from '@aws-sdk/client-sqs';", construct: ['new SQSClient({})'] },
  '@aws-sdk/client-lambda': { imports: "import { LambdaClient } from '@aws-sdk/client-lambda';", construct: ['new LambdaClient({})'] },
};

/** The source of a baseline: it imports and constructs those clients, and does nothing else. */
export function baselineSource(clientPackages: readonly string[]): string {
  const known = clientPackages.map((name) => {
    const construction = CLIENT_CONSTRUCTION[name];
    if (!construction) throw new Error(`the bench does not know how to construct ${name}: add it to CLIENT_CONSTRUCTION`);
    return construction;
  });
  // The document client needs the DynamoDB client's import even if it were alone.
  const imports = new Set(known.map((c) => c.imports));
  if (clientPackages.includes('@aws-sdk/lib-dynamodb')) imports.add(CLIENT_CONSTRUCTION['@aws-sdk/client-dynamodb']!.imports);
  return `${[...imports].join('\n')}\nexport const clients = [${known.flatMap((c) => c.construct).join(', ')}];\n`;
}

/** Builds a baseline with the same options as the functions. */
export async function bundleBaseline(settings: DeploySettings, clientPackages: readonly string[], outfile: string): Promise<Bundle> {
  const result = await build({
    ...settings.esbuild,
    stdin: { contents: baselineSource(clientPackages), resolveDir: repoRoot, sourcefile: 'baseline.js', loader: 'js' },
    outfile,
    absWorkingDir: repoRoot,
    metafile: true,
    logLevel: 'error',
  });
  return describe(result.metafile, settings.outExtension);
}

async function describe(metafile: Metafile, extension: string): Promise<Bundle> {
  const [file, output] = Object.entries(metafile.outputs).find(([name]) => name.endsWith(extension)) ?? [];
  if (!file || !output) throw new Error(`esbuild wrote no ${extension} file`);
  const bytesByPackage: Record<string, number> = {};
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = packageOf(input);
    bytesByPackage[name] = (bytesByPackage[name] ?? 0) + bytesInOutput;
  }
  const clientPackages = Object.keys(bytesByPackage)
    .filter((name) => /^@aws-sdk\/(client-[a-z0-9-]+|lib-dynamodb)$/.test(name))
    .sort();
  const path = resolve(repoRoot, file);
  const mapBytes = await stat(`${path}.map`).then(
    (s) => s.size,
    () => 0,
  );
  return { file: path, bytes: (await stat(path)).size, mapBytes, bytesByPackage, clientPackages };
}

/** `node_modules/@aws-sdk/client-ses/dist-es/x.js` -> `@aws-sdk/client-ses`; our sources -> `keyplan`. */
export function packageOf(input: string): string {
  const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  return match ? match[1]! : 'keyplan';
}

/**
 * What a bundle holds beyond its baseline, per package, largest first: the bytes a function adds
 * to the SDK clients it needs (its commands, its dependencies, keyplan's own code).
 */
export function bytesOverBaseline(bundle: Bundle, baseline: Bundle): Record<string, number> {
  return Object.fromEntries(
    Object.entries(bundle.bytesByPackage)
      .map(([name, bytes]) => [name, bytes - (baseline.bytesByPackage[name] ?? 0)] as const)
      .filter(([, extra]) => extra > 0)
      .sort(([, a], [, b]) => b - a),
  );
}
