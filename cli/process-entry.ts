import { Console } from 'node:console';

/** What stops a command that runs until interrupted (`events --follow`). */
const INTERRUPTS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Runs the CLI as a process: stdout carries the command's output and nothing else (--json promises
 * one JSON object there), so every log line goes to stderr: the shared logger's, which writes
 * through the global console in Powertools' dev mode, and any library's console output. Both
 * must be in place before the logger's module is loaded, hence the dynamic import.
 */
export async function runAsProcess(options: { argv: readonly string[]; invocation?: string }): Promise<void> {
  globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
  process.env.POWERTOOLS_DEV = 'true';
  // Quiet unless --verbose, whatever a shell set up for the functions says; metrics are for the
  // functions' logs.
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';

  const { runKeyplan } = await import('./run-keyplan');
  process.exitCode = await runKeyplan({
    argv: options.argv,
    ...(options.invocation === undefined ? {} : { invocation: options.invocation }),
    env: process.env,
    cwd: process.cwd(),
    stdout: process.stdout,
    stderr: process.stderr,
    onInterrupt: (stop) => {
      // Ctrl-C reaches this process twice (from the terminal and from cli/bin/keyplan.mjs): stop
      // is called again, which changes nothing.
      for (const signal of INTERRUPTS) process.on(signal, stop);
      return () => {
        for (const signal of INTERRUPTS) process.off(signal, stop);
      };
    },
  });
}
