import { readFile } from 'node:fs/promises';
import { SetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, type Tags } from 'yaml';

/**
 * A function as serverless.yml deploys it, for the bench to run the same way in one process: the
 * environment the deploy gives it (the provider's, then its own) and the most containers Lambda
 * runs of it at once. The mixed-load figure builds each function from this, so a share of the
 * management budget, a burst or a concurrency cap set in serverless.yml (or in a file it reads,
 * such as infra/serverless/management-budget.js) is what the bench measures, without the bench
 * knowing the names of those settings.
 */
export interface DeployedFunction {
  name: string;
  /**
   * What the bench could resolve of the function's environment: `${param:...}` (the default
   * params, then the stage's), `${sls:stage}`, `${self:...}`, `${opt:..., default}` and
   * `${file(x.js):export}`. Values left to the deploy (CloudFormation's !Ref and friends, other
   * files) are left out; the bench's own stack supplies those.
   */
  environment: Record<string, string>;
  /** `reservedConcurrency`, else the queue trigger's `maximumConcurrency`; undefined when Lambda sets no cap. */
  concurrency: number | undefined;
  /** The function's `timeout` in seconds, when it sets one. */
  timeout: number | undefined;
  /** Records one invocation gets from its queue (the `sqs` event's `batchSize`), when it has one. */
  batchSize: number | undefined;
  /**
   * The queue that triggers it (its `sqs` event's `!GetAtt <Queue>.Arn`), as the stack's
   * `resources` define it, for the bench to give its own queue the same delivery settings.
   */
  queue: DeployedQueue | undefined;
}

export interface DeployedQueue {
  logicalId: string;
  /** Seconds a received message stays invisible; undefined when the bench could not resolve it. */
  visibilityTimeout: number | undefined;
  /** Receives before the message moves to the dead-letter queue. */
  maxReceiveCount: number | undefined;
}

/**
 * Environment the bench's stack supplies to every function it runs (its endpoint, its queue), never
 * taken from serverless.yml, besides the names of the figure's own stack environment.
 */
export const STACK_ENVIRONMENT: readonly string[] = ['AWS_ENDPOINT_URL', 'QUEUE_URL', 'NODE_OPTIONS', 'SES_CONFIGURATION_SET'];

export interface ReadOptions {
  /** Default: the repository's serverless.yml. */
  file?: string;
  /** The stage whose params apply after the defaults; the deploy's default is dev. */
  stage?: string;
  /** Environment names not to resolve (the bench supplies them), e.g. TABLE_NAME. */
  skip?: ReadonlySet<string>;
}

const DEFAULT_FILE = fileURLToPath(new URL('../serverless.yml', import.meta.url));

/** Reads the named functions of serverless.yml. @throws when the file cannot be read or names no such function */
export async function readDeployedFunctions(names: readonly string[], options: ReadOptions = {}): Promise<Record<string, DeployedFunction>> {
  const file = resolve(options.file ?? DEFAULT_FILE);
  const doc = parse(await readFile(file, 'utf8'), { customTags: CLOUDFORMATION_TAGS }) as Record<string, unknown>;
  const variables = new ServerlessVariables(doc, dirname(file), options.stage ?? 'dev');
  const provider = asRecord(doc.provider);
  const functions = asRecord(doc.functions);
  const result: Record<string, DeployedFunction> = {};
  for (const name of names) {
    const definition = functions[name];
    if (!definition || typeof definition !== 'object') throw new Error(`${file} defines no function ${name}`);
    const fn = asRecord(definition);
    const environment: Record<string, string> = {};
    for (const [key, raw] of [...Object.entries(asRecord(provider.environment)), ...Object.entries(asRecord(fn.environment))]) {
      if (options.skip?.has(key)) continue;
      const value = await variables.resolve(raw);
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') environment[key] = String(value);
      else delete environment[key];
    }
    const queueCap = asArray(fn.events)
      .map((event) => asRecord(asRecord(event).sqs).maximumConcurrency)
      .find((cap) => cap !== undefined);
    const raw = await variables.resolve(fn.reservedConcurrency ?? queueCap);
    const cap = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : Number.NaN;
    const timeout = positiveNumber(await variables.resolve(fn.timeout));
    const queueId = asArray(fn.events)
      .map((event) => queueOf(asRecord(asRecord(event).sqs).arn))
      .find((id) => id !== undefined);
    const batchSize = positiveNumber(
      await variables.resolve(asArray(fn.events).map((event) => asRecord(asRecord(event).sqs).batchSize).find((size) => size !== undefined)),
    );
    result[name] = {
      name,
      environment,
      concurrency: Number.isInteger(cap) && cap > 0 ? cap : undefined,
      timeout,
      batchSize,
      queue: queueId === undefined ? undefined : await deployedQueue(queueId, doc, variables),
    };
  }
  return result;
}

/**
 * Gives a queue of the bench's own the deployed queue's visibility timeout: a consumer slower than
 * a shorter timeout would see its messages delivered again while it still holds them. Returns the
 * timeout set, or undefined when the deploy's is unknown (the queue keeps its own).
 */
export async function matchDeployedQueue(sqs: SQSClient, queueUrl: string, queue: DeployedQueue | undefined): Promise<number | undefined> {
  const seconds = queue?.visibilityTimeout;
  if (seconds === undefined) return undefined;
  await sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { VisibilityTimeout: String(seconds) } }));
  return seconds;
}

/** `!GetAtt Queue.Arn` (or `[Queue, Arn]`) -> `Queue`. */
function queueOf(arn: unknown): string | undefined {
  if (!(arn instanceof Intrinsic) || arn.name !== 'GetAtt') return undefined;
  const [resource, attribute] = Array.isArray(arn.value) ? arn.value.map(String) : String(arn.value).split('.');
  return attribute === 'Arn' && resource ? resource : undefined;
}

/**
 * The queue's properties from the stack's `resources` (each entry resolved as the framework does,
 * `${file(x.js):resources}` included); unresolved properties are left undefined.
 */
async function deployedQueue(logicalId: string, doc: Record<string, unknown>, variables: ServerlessVariables): Promise<DeployedQueue> {
  for (const entry of asArray(doc.resources).length > 0 ? asArray(doc.resources) : [doc.resources]) {
    const resources = asRecord(asRecord(await variables.resolve(entry)).Resources);
    const queue = asRecord(resources[logicalId]);
    if (queue.Type !== 'AWS::SQS::Queue') continue;
    const properties = asRecord(queue.Properties);
    return {
      logicalId,
      visibilityTimeout: positiveNumber(await variables.resolve(properties.VisibilityTimeout)),
      maxReceiveCount: positiveNumber(await variables.resolve(asRecord(properties.RedrivePolicy).maxReceiveCount)),
    };
  }
  return { logicalId, visibilityTimeout: undefined, maxReceiveCount: undefined };
}

function positiveNumber(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** A value the bench cannot know: a CloudFormation intrinsic or a variable it does not resolve. */
export const UNRESOLVED: unique symbol = Symbol('unresolved');

class Intrinsic {
  constructor(
    readonly name: string,
    /** The tag's argument: `Queue.Arn` for `!GetAtt Queue.Arn`. */
    readonly value?: unknown,
  ) {}
}

const CLOUDFORMATION_TAGS: Tags = [
  'Ref', 'Sub', 'GetAtt', 'Join', 'Select', 'Split', 'If', 'Equals', 'Not', 'And', 'Or',
  'FindInMap', 'Base64', 'Cidr', 'ImportValue', 'GetAZs', 'Condition', 'Transform',
].flatMap((name) => [
  { tag: `!${name}`, resolve: (value: string) => new Intrinsic(name, value) },
  { tag: `!${name}`, collection: 'seq' as const, resolve: (value: unknown) => new Intrinsic(name, toJs(value)) },
  { tag: `!${name}`, collection: 'map' as const, resolve: (value: unknown) => new Intrinsic(name, toJs(value)) },
]);

/** A YAML collection node as plain data. */
function toJs(value: unknown): unknown {
  const node = value as { toJSON?: () => unknown };
  return typeof node?.toJSON === 'function' ? node.toJSON() : value;
}

const VARIABLE = /\$\{([^{}]+)\}/g;

/** The serverless framework's variables, as far as the bench needs them. */
export class ServerlessVariables {
  readonly #files = new Map<string, Promise<unknown>>();

  constructor(
    private readonly doc: Record<string, unknown>,
    private readonly dir: string,
    private readonly stage: string,
  ) {}

  /** `raw` with its variables resolved; a string that is one variable keeps the variable's type. */
  async resolve(raw: unknown, depth = 0): Promise<unknown> {
    if (depth > 20) return UNRESOLVED;
    if (raw instanceof Intrinsic) return UNRESOLVED;
    if (typeof raw !== 'string') return raw;
    const whole = /^\$\{([^{}]+)\}$/.exec(raw);
    if (whole) return this.resolve(await this.variable(whole[1]!, depth), depth + 1);
    let unresolved = false;
    const parts: string[] = [];
    let last = 0;
    for (const match of raw.matchAll(VARIABLE)) {
      const value = await this.resolve(await this.variable(match[1]!, depth), depth + 1);
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') unresolved = true;
      parts.push(raw.slice(last, match.index), String(value));
      last = match.index + match[0].length;
    }
    return unresolved ? UNRESOLVED : parts.join('') + raw.slice(last);
  }

  /** One variable, without the `${}`: `param:x`, `self:a.b`, `sls:stage`, `opt:x, 'default'`, `file(f.js):name`. */
  async variable(expression: string, depth = 0): Promise<unknown> {
    const [reference = '', ...fallbacks] = splitTopLevel(expression);
    const value = await this.#lookup(reference.trim(), depth);
    if (value !== UNRESOLVED && value !== undefined && value !== null) return value;
    for (const fallback of fallbacks) {
      const text = fallback.trim();
      const quoted = /^(['"])(.*)\1$/.exec(text);
      if (quoted) return quoted[2];
      if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
      const alternative = await this.#lookup(text, depth);
      if (alternative !== UNRESOLVED && alternative !== undefined) return alternative;
    }
    return UNRESOLVED;
  }

  async #lookup(reference: string, depth: number): Promise<unknown> {
    if (reference === 'sls:stage' || reference === 'opt:stage') return this.stage;
    if (reference.startsWith('param:')) {
      const params = asRecord(this.doc.params);
      const name = reference.slice('param:'.length);
      const own = asRecord(params[this.stage]);
      return Object.hasOwn(own, name) ? own[name] : Object.hasOwn(asRecord(params.default), name) ? asRecord(params.default)[name] : UNRESOLVED;
    }
    if (reference.startsWith('self:')) {
      let node: unknown = this.doc;
      for (const segment of reference.slice('self:'.length).split('.')) {
        node = await this.resolve(node, depth + 1);
        if (!node || typeof node !== 'object' || !Object.hasOwn(node, segment)) return UNRESOLVED;
        node = (node as Record<string, unknown>)[segment];
      }
      return node;
    }
    const file = /^file\(([^)]+)\):(.+)$/.exec(reference);
    if (file && /\.(m?js)$/.test(file[1]!.trim())) return this.#fromModule(file[1]!.trim(), file[2]!.trim());
    return UNRESOLVED;
  }

  /** An export of a module serverless.yml names; a function is called as the framework calls it. */
  #fromModule(path: string, name: string): Promise<unknown> {
    const key = `${path}:${name}`;
    let value = this.#files.get(key);
    if (!value) {
      value = (async () => {
        try {
          const module = (await import(pathToFileURL(resolve(this.dir, path)).href)) as Record<string, unknown>;
          const exported = module[name];
          if (typeof exported !== 'function') return exported ?? UNRESOLVED;
          const resolveVariable = async (variable: string) => {
            const resolved = await this.resolve(await this.variable(variable));
            return resolved === UNRESOLVED ? undefined : resolved;
          };
          return (await (exported as (context: unknown) => unknown)({ resolveVariable, options: { stage: this.stage } })) ?? UNRESOLVED;
        } catch {
          // A file the bench cannot evaluate (it needs the framework or AWS) leaves its values to the deploy.
          return UNRESOLVED;
        }
      })();
      this.#files.set(key, value);
    }
    return value;
  }
}

/** `opt:region, 'us-east-1'` -> [`opt:region`, ` 'us-east-1'`]: commas outside parentheses and quotes. */
function splitTopLevel(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(expression.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(expression.slice(start));
  return parts;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Intrinsic) ? (value as Record<string, unknown>) : {};
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
