// `npm run import -- FILE`: the same command as `keyplan import FILE` (cli/import-command.ts).
import { runAsProcess } from './process-entry';

await runAsProcess({ argv: ['import', ...process.argv.slice(2)], invocation: 'npm run import --' });
