import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import ts from 'typescript';

/** One module's imports: repo-relative paths of our own files, bare names of packages. */
export interface ModuleImports {
  /** Repo-relative, `/`-separated: `shared/aws/clients.ts`. */
  file: string;
  /** Our files this one imports, re-exports from or loads with `import()`. */
  files: string[];
  /** Packages, as named: `@aws-sdk/client-ses`, `node:crypto`, `zod`. */
  packages: string[];
  /** Only `export ... from` statements: a re-export left where a module used to be. */
  reexportOnly: boolean;
}

export type ImportGraph = Map<string, ModuleImports>;

/**
 * The imports of every .ts file under `dirs` (repo-relative), read with the TypeScript compiler's
 * own pre-processor: `import`, `import type`, `export ... from` and `import()` alike. A type-only
 * import is a dependency too: the layering is about who knows whom, not only about what is bundled.
 */
export function readImportGraph(root: string, dirs: readonly string[]): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const dir of dirs) {
    for (const file of tsFilesUnder(root, dir)) {
      const text = readFileSync(join(root, file), 'utf8');
      const specifiers = ts.preProcessFile(text, true, true).importedFiles.map((ref) => ref.fileName);
      const files: string[] = [];
      const packages: string[] = [];
      for (const specifier of specifiers) {
        if (specifier.startsWith('.')) files.push(resolveRelative(root, file, specifier));
        else packages.push(specifier);
      }
      const reexportOnly = isReexportOnly(file, text);
      graph.set(file, { file, files: [...new Set(files)], packages: [...new Set(packages)], reexportOnly });
    }
  }
  return graph;
}

function tsFilesUnder(root: string, dir: string): string[] {
  if (!existsSync(join(root, dir))) return [];
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .map((entry) => posix.join(dir, entry.split('\\').join('/')))
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .sort();
}

/** `./composition` from `functions/register/handler.ts` -> `functions/register/composition.ts`. */
function resolveRelative(root: string, from: string, specifier: string): string {
  const base = posix.normalize(posix.join(posix.dirname(from), specifier));
  const candidates = [`${base}.ts`, `${base}/index.ts`, base];
  return candidates.find((candidate) => existsSync(join(root, candidate))) ?? `${base}.ts`;
}

function isReexportOnly(file: string, text: string): boolean {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  return (
    source.statements.length > 0 &&
    source.statements.every((statement) => ts.isExportDeclaration(statement) && statement.moduleSpecifier !== undefined)
  );
}

/**
 * The node a file belongs to: `shared/<folder>` for a file in a folder of shared/, `shared` for
 * shared/'s own files (config, errors, logger, ...), `functions/<name>`, or the top directory.
 */
export function folderOf(file: string): string {
  const [top = '', second, ...rest] = file.split('/');
  if ((top === 'shared' || top === 'functions') && second !== undefined && rest.length > 0) return `${top}/${second}`;
  return top;
}

/** Cycles among the folders, one list of folders per strongly connected component (Tarjan). */
export function folderCycles(edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const target of edges.get(node) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node)!, index.get(target)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const node of [...edges.keys()].sort()) if (!index.has(node)) visit(node);
  return cycles;
}
