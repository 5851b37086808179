import type { Config } from '../shared/config';
import { logger } from '../shared/logger';
import { type Command, GLOBAL_HELP, type ParsedArgs, parseCommandArgs, stringOption } from './command';
import { changeTierCommand } from './commands/change-tier';
import { consoleCommand } from './commands/console';
import { eventsCommand } from './commands/events';
import { historyCommand } from './commands/history';
import { jobsCommand } from './commands/jobs';
import { provisionCommand } from './commands/provision';
import { reconcileCommand } from './commands/reconcile';
import { revokeCommand } from './commands/revoke';
import { rotateCommand } from './commands/rotate';
import { shardsCommand } from './commands/shards';
import { statusCommand } from './commands/status';
import { usageCommand } from './commands/usage';
import { describeFailure, EXIT, UsageError } from './failures';
import { importCommand } from './import-command';
import { awsServices, type Services } from './services';
import { selectStack } from './stack';

export const COMMANDS: readonly Command[] = [
  provisionCommand,
  statusCommand,
  rotateCommand,
  changeTierCommand,
  revokeCommand,
  usageCommand,
  historyCommand,
  eventsCommand,
  reconcileCommand,
  jobsCommand,
  importCommand,
  shardsCommand,
  consoleCommand,
];

export interface CliIo {
  /** The arguments after the program: COMMAND and its arguments. */
  argv: readonly string[];
  /** Written to for the local stack: the AWS SDK reads its endpoint and credentials from it. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: { write(text: string): unknown };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** What a command's usage line starts with; `keyplan COMMAND` unless called as another script. */
  invocation?: string;
  /** The composition root's seam for tests; by default the use cases' AWS dependencies. */
  services?: (config: Config) => Services;
  now?: () => Date;
  /**
   * Calls `stop` on Ctrl-C (and SIGTERM) instead of letting the signal end the process, until the
   * function it returns is called; asked for only by a command that runs until interrupted. The
   * process's signals in runAsProcess; without it, nothing interrupts a command.
   */
  onInterrupt?: (stop: () => void) => () => void;
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return `Usage: keyplan COMMAND [ARGUMENTS] [--json] [--stage NAME]

keyplan's operator commands: the use cases of the Lambda functions, run with your AWS credentials
against a deployed stage, or against the local stack of \`npm start\`.

Commands
${COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join('\n')}

Run \`keyplan COMMAND --help\` for a command's arguments.

${GLOBAL_HELP}`;
}

const commandHelp = (command: Command, invocation: string) => `${command.help(invocation)}\n${GLOBAL_HELP}`;

/** `npx keyplan COMMAND ...`: runs one command and returns its exit code; never throws. */
export async function runKeyplan(io: CliIo): Promise<number> {
  const [name, ...rest] = io.argv;
  const command = COMMANDS.find((candidate) => candidate.name === name);
  const prefix = command ? `keyplan ${command.name}` : 'keyplan';
  // Known before the arguments are parsed, so that a usage error is JSON too when asked for.
  const json = (io.argv.includes('--') ? io.argv.slice(0, io.argv.indexOf('--')) : io.argv).includes('--json');
  let local = false;
  let verbose = false;
  let services: Services | undefined;
  let stopListening: (() => void) | undefined;
  const interruption = new AbortController();
  const logLevel = logger.getLevelName();
  try {
    if (name === undefined) {
      io.stderr.write(mainHelp());
      return EXIT.usage;
    }
    if (name === '--help' || name === '-h' || name === 'help') return help(rest[0], io);
    if (!command) throw new UsageError(`unknown command "${name}"; the commands are: ${COMMANDS.map((c) => c.name).join(', ')}`);

    const args: ParsedArgs = parseCommandArgs(command, rest);
    if (args.values.help === true) {
      io.stdout.write(commandHelp(command, io.invocation ?? prefix));
      return EXIT.ok;
    }
    const work = command.parse(args);
    verbose = args.values.verbose === true;
    if (verbose) logger.setLogLevel('INFO');

    const stage = stringOption(args, 'stage');
    const stack = await selectStack({ stage, functionKey: command.stageFunction?.(args) }, io);
    local = stack.local;
    io.stderr.write(`${prefix}: using ${stack.description}\n`);
    services = (io.services ?? awsServices)(stack.config);
    const output = await work({
      config: stack.config,
      services,
      now: io.now ?? (() => new Date()),
      stderr: io.stderr,
      stdout: io.stdout,
      interrupted: () => {
        stopListening ??= io.onInterrupt?.(() => interruption.abort()) ?? (() => undefined);
        return interruption.signal;
      },
      local,
      stage,
    });

    if (!output.streamed) io.stdout.write(json ? `${JSON.stringify(output.json)}\n` : output.text);
    for (const note of output.notes ?? []) io.stderr.write(`${prefix}: ${note}\n`);
    return output.exitCode ?? EXIT.ok;
  } catch (error) {
    const failure = describeFailure(error, { unreachableHint: local ? 'is `npm start` running?' : undefined });
    if (verbose) logger.error('command failed', { command: name, error });
    // The operator's line: what went wrong, never a stack trace (--verbose logs have the details).
    io.stderr.write(`${prefix}: ${failure.message}\n`);
    if (failure.code === 'usage') io.stderr.write(`Run \`${command ? (io.invocation ?? prefix) : 'keyplan'} --help\` for usage.\n`);
    if (json) io.stdout.write(`${JSON.stringify({ error: failure })}\n`);
    return failure.exitCode;
  } finally {
    stopListening?.();
    services?.close();
    logger.setLogLevel(logLevel);
  }
}

function help(topic: string | undefined, io: CliIo): number {
  if (topic === undefined) {
    io.stdout.write(mainHelp());
    return EXIT.ok;
  }
  const command = COMMANDS.find((candidate) => candidate.name === topic);
  if (!command) throw new UsageError(`unknown command "${topic}"`);
  io.stdout.write(commandHelp(command, `keyplan ${command.name}`));
  return EXIT.ok;
}
