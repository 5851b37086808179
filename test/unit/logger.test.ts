import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, type LogContext } from '../../shared/logger';

/** A logger over `env` whose lines are parsed as they are written. */
function loggerOver(env: NodeJS.ProcessEnv = {}) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(env, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  return { logger, lines };
}

const CONTEXT: LogContext = {
  cold_start: true,
  function_arn: 'arn:aws:lambda:us-east-1:123456789012:function:keyplan-dev-register',
  function_memory_size: '512',
  function_name: 'keyplan-dev-register',
  function_request_id: 'request-1',
};

describe('the logger', () => {
  afterEach(() => vi.useRealTimers());

  it('writes one JSON line per entry: level, message, timestamp, service, then the attributes', () => {
    vi.useFakeTimers({ now: new Date('2026-12-01T10:00:00.000Z') });
    const written: string[] = [];
    const logger = createLogger({ POWERTOOLS_SERVICE_NAME: 'keyplan-dev' }, (line) => written.push(line));

    logger.info('registration complete', { registrationId: 'reg-1', keyId: 'key-1' });

    expect(written).toEqual([
      '{"level":"INFO","message":"registration complete","timestamp":"2026-12-01T10:00:00.000Z","service":"keyplan-dev","registrationId":"reg-1","keyId":"key-1"}',
    ]);
  });

  it('is at INFO unless told otherwise, and writes nothing below its level', () => {
    const { logger, lines } = loggerOver();

    logger.trace('t');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');

    expect(logger.getLevelName()).toBe('INFO');
    expect(lines.map((line) => [line.level, line.message])).toEqual([
      ['INFO', 'i'],
      ['WARN', 'w'],
      ['ERROR', 'e'],
    ]);
  });

  it.each([
    [{ POWERTOOLS_LOG_LEVEL: 'debug' }, 'DEBUG'],
    [{ POWERTOOLS_LOG_LEVEL: 'SILENT', LOG_LEVEL: 'DEBUG' }, 'SILENT'],
    [{ LOG_LEVEL: 'WARN' }, 'WARN'],
    [{ AWS_LAMBDA_LOG_LEVEL: 'ERROR', LOG_LEVEL: 'DEBUG' }, 'ERROR'],
    [{ POWERTOOLS_LOG_LEVEL: 'loud', LOG_LEVEL: 'TRACE' }, 'TRACE'],
    [{ POWERTOOLS_LOG_LEVEL: 'loud' }, 'INFO'],
    // Lambda's advanced logging controls drop lines below their level: the logger never goes lower.
    [{ POWERTOOLS_LOG_LEVEL: 'DEBUG', AWS_LAMBDA_LOG_LEVEL: 'WARN' }, 'WARN'],
    [{ POWERTOOLS_LOG_LEVEL: 'ERROR', AWS_LAMBDA_LOG_LEVEL: 'DEBUG' }, 'ERROR'],
  ])('takes its level from %j: %s', (env, level) => {
    expect(loggerOver(env).logger.getLevelName()).toBe(level);
  });

  it('changes level when told, never below the advanced logging controls, and refuses a name that is no level', () => {
    const { logger, lines } = loggerOver({ AWS_LAMBDA_LOG_LEVEL: 'DEBUG' });

    logger.setLogLevel('SILENT');
    logger.error('not written');
    logger.setLogLevel('TRACE');
    logger.trace('below the controls');
    logger.debug('written');

    expect(logger.getLevelName()).toBe('DEBUG');
    expect(lines.map((line) => line.message)).toEqual(['written']);
    expect(() => logger.setLogLevel('LOUD' as 'INFO')).toThrow('invalid log level LOUD');
  });

  it("adds the invocation's Lambda context and X-Ray trace id to every line once it is set", () => {
    const env: NodeJS.ProcessEnv = {};
    const { logger, lines } = loggerOver(env);

    logger.info('before');
    logger.setContext(CONTEXT);
    env._X_AMZN_TRACE_ID = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
    logger.info('inside', { keyId: 'key-1' });

    expect(lines[0]).not.toHaveProperty('function_request_id');
    expect(lines[0]).not.toHaveProperty('xray_trace_id');
    expect(lines[1]).toEqual({
      level: 'INFO',
      message: 'inside',
      timestamp: expect.any(String),
      service: 'keyplan',
      ...CONTEXT,
      xray_trace_id: '1-5759e988-bd862e3fe1be46a994272793',
      keyId: 'key-1',
    });
  });

  it('writes an error as its name, message, stack, own fields and the whole cause chain', () => {
    const { logger, lines } = loggerOver();
    const root = Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } });
    const middle = new Error('association failed', { cause: root });
    const top = new TypeError('provisioning failed', { cause: middle });

    logger.error('request failed', { status: 500, error: top });

    const error = lines[0]!.error as Record<string, unknown>;
    expect(error).toMatchObject({ name: 'TypeError', message: 'provisioning failed' });
    expect(error.stack).toContain('provisioning failed');
    expect(error.cause).toMatchObject({
      name: 'Error',
      message: 'association failed',
      cause: { name: 'TooManyRequestsException', message: 'Rate exceeded', $metadata: { httpStatusCode: 429 } },
    });
    expect(((error.cause as Record<string, unknown>).cause as Record<string, unknown>).stack).toContain('Rate exceeded');
  });

  it('writes a cycle as "[Circular]" instead of throwing, in attributes and in a cause chain', () => {
    const { logger, lines } = loggerOver();
    const node: Record<string, unknown> = { id: 'a' };
    node.self = node;
    const looping = new Error('looping');
    looping.cause = new Error('back', { cause: looping });
    const shared = { id: 'b' };

    logger.warn('cyclic', { node, error: looping, twice: [shared, shared], big: 10n });

    expect(lines[0]).toMatchObject({
      node: { id: 'a', self: '[Circular]' },
      error: { message: 'looping', cause: { message: 'back', cause: '[Circular]' } },
      // The same object twice side by side is no cycle.
      twice: [{ id: 'b' }, { id: 'b' }],
      big: '10',
    });
  });

  it('still writes the line, without its attributes, when serialising them throws', () => {
    const { logger, lines } = loggerOver();

    logger.info('odd attributes', {
      value: {
        toJSON() {
          throw new Error('no JSON');
        },
      },
    });

    expect(lines).toEqual([expect.objectContaining({ level: 'INFO', message: 'odd attributes', logError: 'Error: no JSON' })]);
  });

  it('writes a line straight to stdout, or through the console in POWERTOOLS_DEV mode (the CLI points it at stderr)', () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const console_ = vi.spyOn(console, 'log').mockImplementation(() => undefined);

    createLogger({}).info('to stdout');
    createLogger({ POWERTOOLS_DEV: 'true' }).info('to the console');

    expect(stdout).toHaveBeenCalledExactlyOnceWith(expect.stringMatching(/^\{"level":"INFO","message":"to stdout".*\}\n$/));
    expect(console_).toHaveBeenCalledExactlyOnceWith(expect.stringMatching(/"message":"to the console"/));
  });
});
