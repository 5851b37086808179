import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { folderCycles, folderOf, type ImportGraph, readImportGraph } from '../support/import-graph';

/*
 * The layout is the architecture (STYLE.md 1): use cases in the domain folders of shared/ speak
 * only to ports and to the domain core; adapters (shared/aws) implement the ports; the wiring
 * (shared/wiring and each function's composition.ts) is the only code that knows both; a handler
 * is the Lambda entry of its own composition. These rules read the imports of shared/ and
 * functions/ and fail on every edge that breaks them.
 */

/** Use cases and the core they share: no adapter, no wiring, nothing Lambda-facing. */
const DOMAIN = ['audit', 'console', 'core', 'customers', 'events', 'provisioning', 'reconcile', 'rotation', 'shards', 'sweep', 'usage'].map((f) => `shared/${f}`);
/** Implementations of the ports, over the AWS SDK. */
const ADAPTERS = ['shared/aws'];
/** Builds adapters from clients and configuration; only compositions, the CLI, tests and the bench use it. */
const WIRING = ['shared/wiring'];
/** The HTTP middleware chain and problem mapping. */
const LAMBDA_FACING = ['shared/http'];
/** shared/'s own modules a use case may import. */
const NEUTRAL_ROOT = ['api-key-secret', 'config', 'errors', 'logger', 'metrics', 'schema', 'validation'].map(
  (f) => `shared/${f}.ts`,
);
/** shared/'s own Lambda middleware (log context, metrics flush) and SQS and stream batch handling. */
const LAMBDA_ROOT = ['shared/observability.ts', 'shared/sqs-batch.ts', 'shared/stream-batch.ts'];
/** What a use case must never import directly: the AWS SDK and the Lambda runtime's packages. */
const AWS_OR_LAMBDA_PACKAGE = /^(@aws-sdk\/|@smithy\/|@middy\/|aws-lambda$)/;

/** Besides its own composition, a handler imports only the Lambda-facing middleware it wraps it in. */
const HANDLER_MIDDLEWARE = {
  files: ['shared/http/handler.ts', 'shared/observability.ts'],
  packages: ['@middy/core', 'aws-lambda'],
};
/** Builds every client: for the CLI, tests and bench, never for a function. */
const COMPOSE_EVERYTHING = 'shared/wiring/compose.ts';

/**
 * Re-exports left where a module used to be, for code being edited elsewhere: exempt from the
 * rules above, as long as each only re-exports and nothing but bench/ imports it.
 */
const SHIMS: Readonly<Record<string, string>> = {};

/** Every way the graph breaks the layering, one line each; empty when it holds. */
function architectureViolations(graph: ImportGraph, shims: Readonly<Record<string, string>> = SHIMS): string[] {
  const violations: string[] = [];
  const isIn = (folders: readonly string[], file: string) => folders.includes(folderOf(file));
  const modules = [...graph.values()];
  const own = (top: string) => modules.filter((m) => m.file.startsWith(`${top}/`) && !(m.file in shims));

  for (const m of own('shared')) {
    const folder = folderOf(m.file);
    if (folder === 'shared') {
      if (![...NEUTRAL_ROOT, ...LAMBDA_ROOT].includes(m.file)) {
        violations.push(`${m.file} is not classified: add it to NEUTRAL_ROOT or LAMBDA_ROOT`);
      }
    } else if (![...DOMAIN, ...ADAPTERS, ...WIRING, ...LAMBDA_FACING].includes(folder)) {
      violations.push(`${folder}/ is not classified: add it to DOMAIN, ADAPTERS, WIRING or LAMBDA_FACING`);
    }
    for (const target of m.files) {
      if (!target.startsWith('shared/')) violations.push(`${m.file} imports ${target}: shared/ imports only shared/`);
    }
    if (!isIn(DOMAIN, m.file)) continue;
    for (const target of m.files) {
      if (target.startsWith('shared/') && !isIn(DOMAIN, target) && !NEUTRAL_ROOT.includes(target)) {
        violations.push(`${m.file} imports ${target}: a domain folder imports only domain folders and shared/'s neutral modules`);
      }
    }
    for (const name of m.packages.filter((p) => AWS_OR_LAMBDA_PACKAGE.test(p))) {
      violations.push(`${m.file} imports ${name}: a domain folder speaks to ports, not to AWS or Lambda`);
    }
  }

  const edges = new Map<string, Set<string>>();
  for (const m of own('shared')) {
    for (const target of m.files.filter((t) => t.startsWith('shared/') && folderOf(t) !== folderOf(m.file))) {
      edges.set(folderOf(m.file), (edges.get(folderOf(m.file)) ?? new Set()).add(folderOf(target)));
    }
  }
  for (const cycle of folderCycles(edges)) {
    const members = new Set(cycle);
    const through = own('shared').flatMap((m) =>
      m.files
        .filter((t) => members.has(folderOf(m.file)) && members.has(folderOf(t)) && folderOf(t) !== folderOf(m.file))
        .map((t) => `${m.file} -> ${t}`),
    );
    violations.push(`import cycle between ${cycle.join(', ')}: ${through.join('; ')}`);
  }

  for (const m of own('functions')) {
    const fn = folderOf(m.file);
    for (const target of m.files.filter((t) => t.startsWith('functions/') && folderOf(t) !== fn)) {
      violations.push(`${m.file} imports ${target}: a function imports no other function's folder`);
    }
    const wires = m.files.filter((t) => isIn([...ADAPTERS, ...WIRING], t));
    if (!m.file.endsWith('/composition.ts')) {
      for (const target of wires) {
        violations.push(`${m.file} imports ${target}: only the function's composition.ts wires adapters`);
      }
    }
    if (m.files.includes(COMPOSE_EVERYTHING)) {
      violations.push(`${m.file} imports ${COMPOSE_EVERYTHING}, which builds every client: use shared/wiring's builders`);
    }
    if (m.file === `${fn}/handler.ts`) {
      const allowed = [`${fn}/composition.ts`, ...HANDLER_MIDDLEWARE.files];
      for (const target of m.files.filter((t) => !allowed.includes(t))) {
        violations.push(`${m.file} imports ${target}: a handler imports only ${fn}/composition.ts and the middleware it needs`);
      }
      for (const name of m.packages.filter((p) => !HANDLER_MIDDLEWARE.packages.includes(p))) {
        violations.push(`${m.file} imports ${name}: a handler imports only its composition and the middleware it needs`);
      }
    }
  }

  for (const [shim, why] of Object.entries(shims)) {
    const m = graph.get(shim);
    if (!m) {
      violations.push(`${shim} is gone: remove it from SHIMS`);
      continue;
    }
    if (!m.reexportOnly) violations.push(`${shim} (${why}) must only re-export`);
    for (const importer of modules.filter((i) => i.files.includes(shim) && !i.file.startsWith('bench/'))) {
      violations.push(`${importer.file} imports ${shim} (${why}): import its new place`);
    }
  }
  return violations;
}

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('the architecture', () => {
  const graph = readImportGraph(root, ['shared', 'functions', 'cli', 'test', 'bench', 'infra', 'scripts']);

  it('reads the imports of every module of shared/ and functions/', () => {
    expect([...graph.keys()].filter((f) => f.startsWith('shared/')).length).toBeGreaterThan(40);
    expect(graph.get('functions/register/handler.ts')?.files).toContain('functions/register/composition.ts');
  });

  it('holds: no domain folder imports an adapter, no cycle between folders, each handler imports only its composition', () => {
    expect(architectureViolations(graph)).toEqual([]);
  });

  it('gives every function a handler and a composition', () => {
    const functions = [...new Set([...graph.keys()].filter((f) => f.startsWith('functions/')).map(folderOf))];
    const missing = functions.flatMap((fn) => [`${fn}/handler.ts`, `${fn}/composition.ts`].filter((file) => !graph.has(file)));

    expect(functions).toHaveLength(14);
    expect(missing).toEqual([]);
  });
});

// The rules themselves, on graphs made to break each one: a rule that cannot fail proves nothing.
describe('the architecture rules', () => {
  const graphOf = (modules: Record<string, string[]>, reexportOnly: string[] = []): ImportGraph =>
    new Map(
      Object.entries(modules).map(([file, imports]) => [
        file,
        {
          file,
          files: imports.filter((i) => /^(shared|functions|cli|bench)\//.test(i)),
          packages: imports.filter((i) => !/^(shared|functions|cli|bench)\//.test(i)),
          reexportOnly: reexportOnly.includes(file),
        },
      ]),
    );
  const fine = {
    'shared/core/model.ts': [],
    'shared/rotation/rotate-key.ts': ['shared/core/model.ts', 'shared/errors.ts'],
    'shared/aws/key-table.ts': ['shared/core/model.ts', '@aws-sdk/lib-dynamodb'],
    'shared/wiring/rotation.ts': ['shared/aws/key-table.ts'],
    'functions/rotate-keys/composition.ts': ['shared/wiring/rotation.ts', 'shared/rotation/rotate-key.ts'],
    'functions/rotate-keys/handler.ts': ['functions/rotate-keys/composition.ts', 'shared/observability.ts', '@middy/core'],
  };

  it('accept a graph that keeps the layering', () => {
    expect(architectureViolations(graphOf(fine), {})).toEqual([]);
  });

  it.each([
    [
      'a domain folder importing an adapter',
      { 'shared/rotation/rotate-key.ts': ['shared/aws/key-table.ts'] },
      /rotate-key.ts imports shared\/aws\/key-table.ts: a domain folder imports only domain/,
    ],
    [
      'a domain folder importing the wiring',
      { 'shared/core/model.ts': ['shared/wiring/rotation.ts'] },
      /domain folder imports only domain/,
    ],
    ['a domain folder importing the AWS SDK', { 'shared/core/model.ts': ['@aws-sdk/client-ses'] }, /speaks to ports/],
    [
      'a cycle between folders',
      { 'shared/core/model.ts': ['shared/rotation/rotate-key.ts'] },
      new RegExp(
        'import cycle between shared/core, shared/rotation: ' +
          'shared/core/model.ts -> shared/rotation/rotate-key.ts; shared/rotation/rotate-key.ts -> shared/core/model.ts',
      ),
    ],
    [
      'a cycle through an adapter',
      { 'shared/core/model.ts': ['shared/wiring/rotation.ts'], 'shared/wiring/rotation.ts': ['shared/aws/key-table.ts'] },
      /import cycle between shared\/aws, shared\/core, shared\/wiring/,
    ],
    [
      'a handler importing a use case',
      { 'functions/rotate-keys/handler.ts': ['functions/rotate-keys/composition.ts', 'shared/rotation/rotate-key.ts'] },
      /handler imports only functions\/rotate-keys\/composition.ts/,
    ],
    [
      'a handler importing a module of its folder other than the composition',
      { 'functions/rotate-keys/handler.ts': ['functions/rotate-keys/composition.ts', 'functions/rotate-keys/batch.ts'] },
      /handler imports only/,
    ],
    [
      'a handler importing a package other than its middleware',
      { 'functions/rotate-keys/handler.ts': ['functions/rotate-keys/composition.ts', '@aws-sdk/client-ses'] },
      /handler imports only its composition/,
    ],
    [
      "a function importing another function's folder",
      { 'functions/rotate-keys/composition.ts': ['functions/register/routes.ts'] },
      /no other function's folder/,
    ],
    [
      'a function module other than the composition importing an adapter',
      { 'functions/rotate-keys/routes.ts': ['shared/aws/key-table.ts'] },
      /only the function's composition.ts wires/,
    ],
    [
      'a composition building every client',
      { 'functions/rotate-keys/composition.ts': ['shared/wiring/compose.ts'] },
      /builds every client/,
    ],
    [
      'shared importing a function',
      { 'shared/wiring/rotation.ts': ['functions/rotate-keys/routes.ts'] },
      /shared\/ imports only shared\//,
    ],
    ['a folder nobody classified', { 'shared/misc/thing.ts': [] }, /shared\/misc\/ is not classified/],
  ])('fail on %s', (_, change, message) => {
    const violations = architectureViolations(graphOf({ ...fine, ...change }), {});

    expect(violations.join('\n')).toMatch(message);
  });

  it('exempt a shim that only re-exports and that only bench/ imports, and nothing more', () => {
    const shims = { 'shared/provisioning/compose.ts': 'moved' };
    const withShim = {
      ...fine,
      // As in the repository: the wiring knows the use cases' deps types, the shim re-exports the wiring.
      'shared/provisioning/provision-key.ts': ['shared/core/model.ts'],
      'shared/wiring/rotation.ts': ['shared/aws/key-table.ts', 'shared/provisioning/provision-key.ts'],
      'shared/provisioning/compose.ts': ['shared/wiring/rotation.ts'],
      'bench/x.ts': ['shared/provisioning/compose.ts'],
    };

    expect(architectureViolations(graphOf(withShim, ['shared/provisioning/compose.ts']), shims)).toEqual([]);
    expect(architectureViolations(graphOf(withShim), shims).join('\n')).toMatch(/must only re-export/);
    const importedElsewhere = graphOf({ ...withShim, 'cli/x.ts': ['shared/provisioning/compose.ts'] }, ['shared/provisioning/compose.ts']);
    expect(architectureViolations(importedElsewhere, shims).join('\n')).toMatch(/cli\/x.ts imports shared\/provisioning\/compose.ts/);
    // Unexempted, it is what it is: a domain folder importing the wiring, and a cycle.
    const unexempted = architectureViolations(graphOf(withShim, ['shared/provisioning/compose.ts']), {}).join('\n');
    expect(unexempted).toMatch(/shared\/provisioning\/compose.ts imports shared\/wiring\/rotation.ts: a domain folder/);
    expect(unexempted).toMatch(/import cycle between shared\/provisioning, shared\/wiring/);
  });
});
