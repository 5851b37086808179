import { drainShard, type DrainProgress } from '../../shared/shards/drain-shard';
import { reportShards } from '../../shared/shards/shard-report';
import { type Command, count, integerOption, stringOption, table } from '../command';
import { EXIT, UsageError } from '../failures';

export const shardsCommand: Command = {
  name: 'shards',
  summary: 'list the API Gateway shards against their key ceilings, or drain one',
  options: { limit: { type: 'string' }, to: { type: 'string' }, 'grace-days': { type: 'string' } },
  help: (invocation) => `Usage: ${invocation}
       ${invocation} drain SHARD [--to SHARD] [--limit N] [--grace-days N]

Without arguments: every shard of the shard list with the keys in it (the larger of keyplan's own
count and the reconciler's last inventory of the account and Region) against its 10,000-key
ceiling and high-water mark, and its state: accepting, full (at its high-water mark: no new
customer) or draining.

drain SHARD: marks the shard draining (no new customer is placed there) and moves its customers
to shards with headroom (or --to one), by rotating each ACTIVE key into the other shard: the new
key is made there and emailed with that shard's base URL, and the old key keeps working until the
grace period ends (--grace-days, default GRACE_DAYS), then retires in its own shard. Works in
steps of --limit keys (default 100) until none is left, at the pace the shards' management budgets
allow; interrupted, run it again: it carries on where it stopped.

Exit code 1 when a move failed (run it again), 2 for a bad argument.
`,
  parse(args) {
    const [verb, shardId, ...rest] = args.positionals;
    if (verb === undefined) {
      return async ({ config, services }) => {
        const rows = await reportShards(config.shards, services.shards().registry);
        const text = table([
          ['SHARD', 'KEYS', 'CEILING', 'USED', 'HIGH-WATER', 'STATE', 'BASE URL'],
          ...rows.map((row) => [
            row.shard,
            String(row.keys),
            String(row.keyCeiling),
            `${row.usedPercent}%`,
            row.highWaterKeys === undefined ? '-' : String(row.highWaterKeys),
            row.state,
            row.baseUrl ?? '-',
          ]),
        ]);
        return { json: { shards: rows }, text: `${text}\n` };
      };
    }
    if (verb !== 'drain') throw new UsageError(`unknown shards command "${verb}": use "shards" or "shards drain SHARD"`);
    if (!shardId) throw new UsageError('shards drain needs the SHARD to drain');
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    const limit = integerOption(args, 'limit', 1, 10_000) ?? 100;
    const graceDays = integerOption(args, 'grace-days', 0, 365);
    const to = stringOption(args, 'to');
    return async ({ services, now, stderr }) => {
      const deps = services.shards();
      const total: DrainProgress = { shard: shardId, moved: 0, skipped: 0, busy: 0, failed: 0, to: {}, moreLeft: true };
      // Steps until nothing is left, or a step moves nothing (busy customers, failures): those
      // wait for the next run rather than spinning here.
      while (total.moreLeft) {
        const step = await drainShard(shardId, { now: now(), limit, graceDays, to }, deps);
        total.moved += step.moved;
        total.skipped += step.skipped;
        total.busy = step.busy;
        total.failed = step.failed;
        for (const [target, moved] of Object.entries(step.to)) total.to[target] = (total.to[target] ?? 0) + moved;
        total.moreLeft = step.moreLeft && step.moved > 0;
        stderr.write(`shard ${shardId}: ${count(total.moved, 'key')} moved so far\n`);
        if (!step.moreLeft) break;
      }
      const done = total.busy === 0 && total.failed === 0 && !total.moreLeft;
      const targets = Object.entries(total.to).map(([target, moved]) => `${target}: ${moved}`).join(', ') || 'none';
      return {
        json: { ...total, done },
        text: `shard ${shardId}: ${count(total.moved, 'key')} moved (${targets}), ${total.skipped} skipped, ${total.busy} busy, ${total.failed} failed${done ? '; nothing left to move' : ''}\n`,
        exitCode: total.failed > 0 ? EXIT.failed : EXIT.ok,
        notes: done ? [] : ['some keys are left in the shard: run the drain again'],
      };
    };
  },
};
