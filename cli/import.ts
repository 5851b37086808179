// `npm run import -- FILE`: see cli/import-command.ts.

// stdout carries the summary, which --json promises to scripts as one JSON object: the shared
// logger's lines must not land there. Set before the logger's module is loaded, hence the
// dynamic import.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

const { runImportCommand } = await import('./import-command');

process.exitCode = await runImportCommand({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
});

// A module (for top-level await), not a script; it exports nothing.
export {};
