import { type Command, integerOption, positionals } from '../command';
import { UsageError } from '../failures';
import { emulatorEmails } from '../console/emails';
import { startConsole } from '../console/server';

export const consoleCommand: Command = {
  name: 'console',
  summary: 'a web console on 127.0.0.1: keys, queues, customers and their actions, until Ctrl-C',
  options: { port: { type: 'string' } },
  help: (invocation) => `Usage: ${invocation} [--port N] [--stage NAME]

Serves a small web console from this process on http://127.0.0.1 with your AWS credentials, until
Ctrl-C; nothing is deployed. It prints a URL carrying a random session token: open it in a browser
on this machine. A request without the token is refused; actions are forms that send it.

  Overview   keys against each shard's 10,000-key ceiling, keys by state, rotations and
             retirements due per day for 30 days, the provisioning queue and its DLQ, stalled
             registrations, interrupted operations, failed registrations
  Customer   profile and tier history, each key's lifecycle, usage per day, the audit trail;
             rotate, change tier, revoke and resend an owed email (the same use cases as
             \`keyplan rotate\`, \`change-tier\`, \`revoke\` and the resume sweep)
  Emails     the local stack only: the emails the emulator kept, key values hidden

No key value is ever shown. docs/console.md describes each number and the security model.

  --port N   the port (default: a free one the system picks)

Exit code 0 when stopped with Ctrl-C; 2 when the port is in use.
`,
  parse(args) {
    positionals(args, []);
    const port = integerOption(args, 'port', 0, 65_535);
    return async ({ config, services, stdout, stderr, interrupted, local, stage, now }) => {
      // Where the SDK takes the local stack's endpoint from (stack.ts puts it there): moto's too.
      const endpoint = process.env.AWS_ENDPOINT_URL;
      const stack = stage !== undefined ? `stage ${stage}` : local ? 'the local stack' : `table ${config.tableName}`;
      const running = await startConsole({
        services,
        config,
        stack,
        port,
        now,
        emails: local && endpoint ? () => emulatorEmails(endpoint) : undefined,
        log: (line) => void stderr.write(`keyplan ${line}\n`),
      }).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
        throw new UsageError(`port ${port} is in use: pass another --port, or none for a free one`);
      });
      const stopped = interrupted();
      stdout.write(`${running.url}\n`);
      stderr.write(`keyplan console: serving ${stack} at ${running.origin}; open the URL above (it carries the session token); Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        if (stopped.aborted) resolve();
        else stopped.addEventListener('abort', () => resolve(), { once: true });
      });
      await running.close();
      return { json: {}, text: '', streamed: true, notes: ['stopped'] };
    };
  },
};
