/**
 * keyplan's structured logger: one JSON line per entry, in the shape Powertools Logger wrote
 * (level, message, timestamp, service, the Lambda context inside an invocation, then the
 * attributes), without its 34 KiB (logger and commons, bench figure 3). Messages are constants and
 * data goes in the attributes object; no caller passes an API key value, and the key gateway never
 * returns one outside the saga's email step.
 */

/** Lowest first; an entry is written when its level is at or above the logger's. */
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL', 'SILENT'] as const;
export type LogLevel = (typeof LEVELS)[number];

/** Set by observe() at the start of each invocation, on every line after it. */
export interface LogContext {
  cold_start: boolean;
  function_arn: string;
  function_memory_size: string | number;
  function_name: string;
  function_request_id: string;
}

export interface Logger {
  trace(message: string, attributes?: object): void;
  debug(message: string, attributes?: object): void;
  info(message: string, attributes?: object): void;
  warn(message: string, attributes?: object): void;
  error(message: string, attributes?: object): void;
  getLevelName(): LogLevel;
  /** @throws Error for a name that is not a level */
  setLogLevel(level: LogLevel): void;
  setContext(context: LogContext): void;
}

const levelOf = (name: string | undefined): number => LEVELS.indexOf(name?.trim().toUpperCase() as LogLevel);

/**
 * Where every line goes: stdout, written directly so that Lambda's runtime neither prefixes nor
 * wraps it (CloudWatch reads EMF only from a line that is a JSON object), or the global console in
 * POWERTOOLS_DEV mode, which the CLI points at stderr.
 */
export function lineWriter(env: NodeJS.ProcessEnv): (line: string) => void {
  return /^(1|y|yes|t|true|on)$/i.test(env.POWERTOOLS_DEV?.trim() ?? '')
    ? (line) => console.log(line)
    : (line) => void process.stdout.write(`${line}\n`);
}

/**
 * JSON.stringify's replacer: an Error becomes its name, message, stack, own fields and cause (the
 * chain, as deep as it goes), a bigint a string, and an object already on the path from the root
 * (a cycle) "[Circular]", so that a log call never throws.
 */
function replacer() {
  // [the value met, what it was replaced with], from the root down to the current holder.
  const path: [unknown, unknown][] = [];
  return function (this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === 'bigint') return String(value);
    if (typeof value !== 'object' || value === null) return value;
    while (path.length > 0 && path.at(-1)![1] !== this) path.pop();
    if (path.some(([met]) => met === value)) return '[Circular]';
    let out = value;
    if (value instanceof Error) {
      const { name, message, stack, cause, ...fields } = value;
      out = { name, message, stack, ...fields, cause };
    }
    path.push([value, out]);
    return out;
  };
}

/**
 * A logger over an environment: the level is POWERTOOLS_LOG_LEVEL, AWS_LAMBDA_LOG_LEVEL or
 * LOG_LEVEL (the first that names a level; INFO otherwise), and never below AWS_LAMBDA_LOG_LEVEL,
 * Lambda's advanced logging controls, which drop such lines anyway; the service is
 * POWERTOOLS_SERVICE_NAME. Read once, when it is created.
 */
export function createLogger(env: NodeJS.ProcessEnv = process.env, write = lineWriter(env)): Logger {
  const service = env.POWERTOOLS_SERVICE_NAME || 'keyplan';
  const floor = Math.max(levelOf(env.AWS_LAMBDA_LOG_LEVEL), 0);
  let threshold = 2;
  for (const name of [env.POWERTOOLS_LOG_LEVEL, env.AWS_LAMBDA_LOG_LEVEL, env.LOG_LEVEL]) {
    if (levelOf(name) >= 0) {
      threshold = levelOf(name);
      break;
    }
  }
  threshold = Math.max(threshold, floor);
  let context: Partial<LogContext> = {};

  const log = (at: number) => (message: string, attributes?: object) => {
    if (at < threshold) return;
    const head = { level: LEVELS[at], message, timestamp: new Date().toISOString(), service };
    try {
      write(
        JSON.stringify(
          { ...head, ...context, xray_trace_id: /Root=([^;]+)/.exec(env._X_AMZN_TRACE_ID ?? '')?.[1], ...attributes },
          replacer(),
        ),
      );
    } catch (error) {
      // A toJSON that throws, say: the line without its attributes, and why.
      write(JSON.stringify({ ...head, ...context, logError: String(error) }));
    }
  };

  return {
    trace: log(0),
    debug: log(1),
    info: log(2),
    warn: log(3),
    error: log(4),
    getLevelName: () => LEVELS[threshold]!,
    setLogLevel(level) {
      if (levelOf(level) < 0) throw new Error(`invalid log level ${String(level)}`);
      threshold = Math.max(levelOf(level), floor);
    },
    setContext(next) {
      context = next;
    },
  };
}

/** The one logger. */
export const logger = createLogger();
