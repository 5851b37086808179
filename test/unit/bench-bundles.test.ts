import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import {
  baselineSource,
  type Bundle,
  bundleFunction,
  bytesOverBaselineByPart,
  CLIENT_FACTORIES,
  clientFactoriesCalled,
  CLIENT_MODULES,
  CLIENTS_MODULE,
  constructionsOf,
  packageOf,
  packagesOfFactories,
  partOf,
  readDeploySettings,
} from '../../bench/bundles';

const root = fileURLToPath(new URL('../..', import.meta.url));

const composition = (body: string, imports = "import { apiGatewayClient, dynamoClient } from '../../shared/aws/clients';") => ({
  file: 'functions/demo/composition.ts',
  text: `${imports}\nimport { demoDeps } from '../../shared/wiring/demo';\n${body}`,
});

describe('clientFactoriesCalled', () => {
  it('names the factories of shared/aws/clients.ts a composition calls, sorted', () => {
    const sources = [composition('export const deps = () => demoDeps({ dynamo: dynamoClient(), apiGateway: apiGatewayClient() });')];

    expect(clientFactoriesCalled(sources)).toEqual(['apiGatewayClient', 'dynamoClient']);
  });

  it('counts a call, not a mention in a comment or a string, nor an import left unused', () => {
    const sources = [
      composition(
        "// dynamoClient() is built elsewhere\nexport const deps = () => demoDeps({ name: 'apiGatewayClient()', dynamo: dynamoClient() });",
      ),
    ];

    expect(clientFactoriesCalled(sources)).toEqual(['dynamoClient']);
  });

  it('follows a renamed import and ignores same-named functions from other modules', () => {
    const sources = [
      composition(
        'export const deps = () => [gateway(), sesClient()];',
        "import { apiGatewayClients as gateway } from '../../shared/aws/clients';\nimport { sesClient } from './fake-clients';",
      ),
    ];

    expect(clientFactoriesCalled(sources)).toEqual(['apiGatewayClients']);
  });

  it('leaves out shared/aws/clients.ts itself, whose factories call one another', () => {
    const clients = { file: CLIENTS_MODULE, text: readFileSync(`${root}${CLIENTS_MODULE}`, 'utf8') };

    expect(clientFactoriesCalled([clients])).toEqual([]);
  });

  it.each(['register', 'provision-worker', 'reconcile', 'change-tier', 'customer-usage'])(
    "reads the composition of %s: it builds DynamoDB and API Gateway",
    (name) => {
      const file = `functions/${name}/composition.ts`;
      const called = clientFactoriesCalled([{ file, text: readFileSync(`${root}${file}`, 'utf8') }]);

      expect(called).toContain('dynamoClient');
      expect(called.filter((factory) => factory.startsWith('apiGateway'))).toHaveLength(1);
    },
  );
});

describe('the constructions of the client factories', () => {
  it('expands a factory that builds several clients into theirs', () => {
    expect(constructionsOf('apiGatewayClients')).toEqual([
      "new APIGatewayClient({ retryMode: 'adaptive', maxAttempts: 4 })",
      'new APIGatewayClient({ maxAttempts: 1 })',
    ]);
  });

  it('refuses a factory it does not know', () => {
    expect(() => constructionsOf('lambdaClient')).toThrow(/CLIENT_FACTORIES/);
  });

  it('gives the SDK packages of the clients, the document client with the DynamoDB client it wraps', () => {
    expect(packagesOfFactories(['dynamoClient', 'apiGatewayClients', 'apiGatewayClient'])).toEqual([
      '@aws-sdk/client-api-gateway',
      '@aws-sdk/client-dynamodb',
      '@aws-sdk/lib-dynamodb',
    ]);
  });

  it('builds a baseline that imports and constructs those clients and nothing else', () => {
    expect(baselineSource(['apiGatewayClients', 'dynamoClient', 'sesClient'])).toBe(
      [
        "import { APIGatewayClient } from '@aws-sdk/client-api-gateway';",
        "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
        "import { SESClient } from '@aws-sdk/client-ses';",
        "import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';",
        'export const clients = [' +
          "new APIGatewayClient({ retryMode: 'adaptive', maxAttempts: 4 }), new APIGatewayClient({ maxAttempts: 1 }), " +
          'DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } }), ' +
          'new SESClient({})];',
        '',
      ].join('\n'),
    );
  });
});

/** Each exported factory of CLIENT_MODULES: the factories it calls and the SDK code it runs. */
function factoriesInClientsModule(): Map<string, { calls: string[]; sdk: string[] }> {
  return new Map(CLIENT_MODULES.flatMap((file) => [...factoriesInModule(file)]));
}

function factoriesInModule(file: string): Map<string, { calls: string[]; sdk: string[] }> {
  const text = readFileSync(`${root}${file}`, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const exported = source.statements.filter(
    (s): s is ts.FunctionDeclaration =>
      ts.isFunctionDeclaration(s) && !!s.name && !!s.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword),
  );
  const names = new Set(exported.map((f) => f.name!.text));
  const factories = new Map<string, { calls: string[]; sdk: string[] }>();
  for (const declaration of exported) {
    const found = { calls: [] as string[], sdk: [] as string[] };
    const visit = (node: ts.Node): void => {
      // A shard's location (its Region, an assumed role) is keyplan's code over the SDK: the
      // baseline builds the home shard's client, which has none.
      if (ts.isNewExpression(node)) found.sdk.push(node.getText(source).replace(', ...locate(at)', ''));
      if (ts.isCallExpression(node)) {
        const callee = node.expression.getText(source);
        if (names.has(callee)) found.calls.push(callee);
        // DynamoDBDocumentClient.from(client, options): the options are the SDK's part.
        if (callee.endsWith('.from')) found.sdk.push(...node.arguments.slice(1).map((arg) => arg.getText(source)));
      }
      ts.forEachChild(node, visit);
    };
    visit(declaration);
    factories.set(declaration.name!.text, found);
  }
  return factories;
}

describe('CLIENT_FACTORIES', () => {
  // The bench's baselines build what keyplan's factories build: the same clients, the same options.
  const inModule = factoriesInClientsModule();
  const perClientFactories = [...inModule].filter(([name]) => name !== 'createAwsClients');

  it('knows every factory of shared/aws/clients.ts a composition may call, and no other', () => {
    expect(Object.keys(CLIENT_FACTORIES).sort()).toEqual(perClientFactories.map(([name]) => name).sort());
  });

  it.each(perClientFactories)('%s constructs what the factory in shared/aws/clients.ts constructs', (name, found) => {
    const known = CLIENT_FACTORIES[name]!;
    const calls = 'calls' in known ? [...known.calls].sort() : [];
    const construct = 'construct' in known ? known.construct : '';

    // Either it calls the other factories, or it runs SDK code, all of which the baseline runs too.
    expect(calls).toEqual([...found.calls].sort());
    expect(found.sdk.length > 0).toBe(construct !== '');
    expect(found.sdk.filter((code) => !construct.includes(code))).toEqual([]);
  });
});

describe('the breakdown of a bundle over its baseline', () => {
  it(
    "puts every package of every function's bundle in a part: the SDK, middy, keyplan, or one of keyplan's dependencies",
    async () => {
      const settings = await readDeploySettings();
      const dependencies = Object.keys(
        (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { dependencies: Record<string, string> }).dependencies,
      );
      const outdir = await mkdtemp(join(tmpdir(), 'keyplan-parts-'));
      try {
        const packages = new Set<string>();
        for (const { name, entry } of settings.functions) {
          const bundle = await bundleFunction(settings, entry, join(outdir, name));
          for (const pkg of Object.keys(bundle.bytesByPackage)) packages.add(pkg);
        }

        const unclassified = [...packages].filter(
          (pkg) => !['AWS SDK', 'middy', 'keyplan'].includes(partOf(pkg)) && !dependencies.includes(pkg),
        );
        expect(settings.functions.length).toBeGreaterThan(10);
        expect(packages).toContain('keyplan');
        expect(unclassified).toEqual([]);
      } finally {
        await rm(outdir, { recursive: true, force: true });
      }
    },
    60_000,
  );

  it('names our own sources keyplan and a dependency by its package', () => {
    expect(packageOf('shared/aws/clients.ts')).toBe('keyplan');
    expect(packageOf('node_modules/@middy/core/index.js')).toBe('@middy/core');
    expect(packageOf('node_modules/zod/v4/mini/schemas.js')).toBe('zod');
  });

  it('groups packages into the parts a function adds', () => {
    expect(['@aws-sdk/client-ses', '@smithy/core', '@aws/lambda-invoke-store', 'mnemonist', 'obliterator'].map(partOf)).toEqual(
      Array(5).fill('AWS SDK'),
    );
    expect(partOf('@middy/core')).toBe('middy');
    expect(partOf('zod')).toBe('zod');
    expect(partOf('keyplan')).toBe('keyplan');
  });

  it('sums the bytes beyond the baseline per part, largest first, leaving out what the baseline holds as much of', () => {
    const bundleOf = (bytesByPackage: Record<string, number>): Bundle => ({
      file: 'x.mjs',
      bytes: 0,
      mapBytes: 0,
      bytesByPackage,
      clientPackages: [],
      sources: [],
    });
    const bundle = bundleOf({ '@aws-sdk/client-ses': 1_500, '@smithy/core': 300, zod: 700, keyplan: 2_000, '@middy/core': 50 });
    const baseline = bundleOf({ '@aws-sdk/client-ses': 1_000, '@smithy/core': 400 });

    expect(Object.entries(bytesOverBaselineByPart(bundle, baseline))).toEqual([
      ['keyplan', 2_000],
      ['zod', 700],
      ['AWS SDK', 500],
      ['middy', 50],
    ]);
  });
});
