// `npx keyplan COMMAND ...` (through cli/bin/keyplan.mjs): see cli/run-keyplan.ts.
import { runAsProcess } from './process-entry';

await runAsProcess({ argv: process.argv.slice(2) });
