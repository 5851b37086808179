import { readFile, stat } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import ts from 'typescript';
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
  /** Our own source files in the bundle, repo-relative (`functions/register/composition.ts`). */
  sources: string[];
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

/** The file whose factories build the clients a function holds (one factory per client). */
export const CLIENTS_MODULE = 'shared/aws/clients.ts';
/**
 * Every file of client factories: CLIENTS_MODULE, and EventBridge's apart from it (which keeps the
 * DynamoDB document client out of the one function that calls EventBridge alone).
 */
export const CLIENT_MODULES: readonly string[] = [CLIENTS_MODULE, 'shared/aws/event-bus-client.ts'];

/**
 * What each factory of CLIENT_MODULES builds, with the SDK alone: the same clients with the
 * same options, without keyplan's own middleware (the throttle count). A factory that builds
 * several clients names the factories it calls. test/unit/bench-bundles.test.ts holds this to
 * clients.ts: every factory there is here, constructing what it constructs.
 */
export const CLIENT_FACTORIES: Readonly<Record<string, { construct: string } | { calls: readonly string[] }>> = {
  apiGatewayClient: { construct: "new APIGatewayClient({ retryMode: 'adaptive', maxAttempts: 4 })" },
  singleAttemptApiGatewayClient: { construct: 'new APIGatewayClient({ maxAttempts: 1 })' },
  apiGatewayClients: { calls: ['apiGatewayClient', 'singleAttemptApiGatewayClient'] },
  dynamoClient: {
    construct: 'DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } })',
  },
  sesClient: { construct: 'new SESClient({})' },
  sqsClient: { construct: 'new SQSClient({})' },
  eventBridgeClient: { construct: 'new EventBridgeClient({})' },
  dynamoStreamsClient: { construct: 'new DynamoDBStreamsClient({})' },
};

/** The SDK package of each client class a construction names. */
const CLIENT_CLASSES: Readonly<Record<string, string>> = {
  APIGatewayClient: '@aws-sdk/client-api-gateway',
  DynamoDBClient: '@aws-sdk/client-dynamodb',
  DynamoDBDocumentClient: '@aws-sdk/lib-dynamodb',
  DynamoDBStreamsClient: '@aws-sdk/client-dynamodb-streams',
  EventBridgeClient: '@aws-sdk/client-eventbridge',
  SESClient: '@aws-sdk/client-ses',
  SQSClient: '@aws-sdk/client-sqs',
};

/** The constructions a factory stands for, its calls expanded: `apiGatewayClients` -> two clients. */
export function constructionsOf(factory: string): string[] {
  const known = CLIENT_FACTORIES[factory];
  if (!known) throw new Error(`the bench does not know the client factory ${factory}: add it to CLIENT_FACTORIES`);
  return 'construct' in known ? [known.construct] : known.calls.flatMap(constructionsOf);
}

/** The SDK packages the factories' clients come from, sorted: what their bundle must hold. */
export function packagesOfFactories(factories: readonly string[]): string[] {
  const classes = factories.flatMap(constructionsOf).flatMap((code) => code.match(/\b\w+Client\b/g) ?? []);
  return [...new Set(classes.map((name) => CLIENT_CLASSES[name] ?? `unknown client class ${name}`))].sort();
}

/**
 * The client factories of CLIENT_MODULES that our sources call, sorted: a function's composition
 * calls each factory of a client it holds, once. Read with the TypeScript parser, so a factory's
 * name in a comment or a string does not count, and only calls of what was imported from
 * CLIENT_MODULES do.
 */
export function clientFactoriesCalled(sources: readonly { file: string; text: string }[]): string[] {
  const called = new Set<string>();
  for (const { file, text } of sources) {
    if (CLIENT_MODULES.includes(file)) continue;
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
    // Local name -> the factory it was imported as.
    const factories = new Map<string, string>();
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
      const target = posix.normalize(posix.join(posix.dirname(file), statement.moduleSpecifier.text));
      const bindings = statement.importClause?.namedBindings;
      if (!CLIENT_MODULES.includes(`${target}.ts`) || !bindings || !ts.isNamedImports(bindings)) continue;
      for (const element of bindings.elements) {
        if (!element.isTypeOnly) factories.set(element.name.text, (element.propertyName ?? element.name).text);
      }
    }
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression)) {
        const factory = factories.get(node.expression.text);
        if (factory) called.add(factory);
      }
      ts.forEachChild(node, visit);
    };
    if (factories.size > 0) visit(source);
  }
  return [...called].sort();
}

/** The source of a baseline: it imports and constructs what those factories build, and does nothing else. */
export function baselineSource(factories: readonly string[]): string {
  const constructions = factories.flatMap(constructionsOf);
  const byPackage = new Map<string, Set<string>>();
  for (const name of constructions.flatMap((code) => code.match(/\b\w+Client\b/g) ?? [])) {
    const pkg = CLIENT_CLASSES[name];
    if (!pkg) throw new Error(`the bench does not know the package of ${name}: add it to CLIENT_CLASSES`);
    byPackage.set(pkg, (byPackage.get(pkg) ?? new Set()).add(name));
  }
  const imports = [...byPackage]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([pkg, names]) => `import { ${[...names].sort().join(', ')} } from '${pkg}';`);
  return `${imports.join('\n')}\nexport const clients = [${constructions.join(', ')}];\n`;
}

/**
 * The client factories a function's bundle calls, read from its own sources in the bundle (its
 * metafile's inputs), and checked against the SDK client packages esbuild put in it: a client
 * built some other way than through CLIENTS_MODULE would make the two disagree.
 *
 * @throws Error when the factories' packages are not the bundle's client packages
 */
export async function clientFactoriesOf(bundle: Bundle): Promise<string[]> {
  const sources = await Promise.all(
    bundle.sources.map(async (file) => ({ file, text: await readFile(join(repoRoot, file), 'utf8') })),
  );
  const factories = clientFactoriesCalled(sources);
  const expected = packagesOfFactories(factories).join(', ');
  if (expected !== bundle.clientPackages.join(', ')) {
    throw new Error(
      `${bundle.file} holds ${bundle.clientPackages.join(', ')} but its sources call ${factories.join(', ') || 'no client factory'} (${expected})`,
    );
  }
  return factories;
}

/** Builds the baseline of those client factories with the same options as the functions. */
export async function bundleBaseline(settings: DeploySettings, factories: readonly string[], outfile: string): Promise<Bundle> {
  const result = await build({
    ...settings.esbuild,
    stdin: { contents: baselineSource(factories), resolveDir: repoRoot, sourcefile: 'baseline.js', loader: 'js' },
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
  const sources = Object.keys(output.inputs)
    .filter((input) => packageOf(input) === 'keyplan' && input.endsWith('.ts'))
    .sort();
  const path = resolve(repoRoot, file);
  const mapBytes = await stat(`${path}.map`).then(
    (s) => s.size,
    () => 0,
  );
  return { file: path, bytes: (await stat(path)).size, mapBytes, bytesByPackage, clientPackages, sources };
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

/**
 * Packages the SDK's clients bring outside its own scopes (the endpoint cache's LRU and what that
 * uses). test/unit/bench-bundles.test.ts bundles every function and fails on a package that is
 * neither here, nor in a named scope, nor one of keyplan's own dependencies.
 */
export const SDK_DEPENDENCIES: readonly string[] = ['mnemonist', 'obliterator'];

/**
 * Which part of a bundle a package is, for the breakdown of what a function adds to its baseline:
 * the SDK (the commands it sends and what they bring, beyond the clients; `@aws/` holds the Lambda
 * invoke store its recursion detection reads), middy, keyplan's own code (its logger, metrics and
 * SQS batch handling included: they replaced Powertools, docs/design.md); a direct dependency by its
 * package name.
 */
export function partOf(name: string): string {
  if (/^@(aws-sdk|aws|smithy|aws-crypto)\//.test(name) || SDK_DEPENDENCIES.includes(name)) return 'AWS SDK';
  if (name.startsWith('@middy/')) return 'middy';
  return name;
}

/** bytesOverBaseline, summed by partOf, largest first. */
export function bytesOverBaselineByPart(bundle: Bundle, baseline: Bundle): Record<string, number> {
  const parts: Record<string, number> = {};
  for (const [name, bytes] of Object.entries(bytesOverBaseline(bundle, baseline))) {
    parts[partOf(name)] = (parts[partOf(name)] ?? 0) + bytes;
  }
  return Object.fromEntries(Object.entries(parts).sort(([, a], [, b]) => b - a));
}
