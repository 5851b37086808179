import type { ReconcileAction, ReconcileReport } from '../../shared/reconcile/reconcile-keys';
import { reconcileKeys } from '../../shared/reconcile/reconcile-keys';
import { type Command, count, flag, positionals, table } from '../command';
import { EXIT } from '../failures';

export const reconcileCommand: Command = {
  name: 'reconcile',
  summary: 'compare the managed keys in API Gateway with the table and repair drift',
  options: { 'dry-run': { type: 'boolean' } },
  help: (invocation) => `Usage: ${invocation} [--dry-run]

What the scheduled reconcile function does, now: lists the stack's managed keys in API Gateway
(by name prefix and tag) and the keys the table tracks, then deletes orphaned keys, puts live keys
into the usage plan of their customer's tier (under the customer's lease), and marks records whose
key is gone. Keys and records younger than RECONCILE_MIN_KEY_AGE_MINUTES are left alone: a
registration may still be writing them. Also reports how close the account is to API Gateway's
10,000-keys ceiling.

  --dry-run   report what it would do; change nothing

Exit code 1 when a repair failed (the next run tries again). Repairs skipped because another
operation held the customer are counted as busy, not failed.
`,
  parse(args) {
    positionals(args, []);
    const dryRun = flag(args, 'dry-run');
    return async ({ services, now }) => {
      const report = await reconcileKeys({ now: now(), dryRun }, services.reconcile());
      return {
        json: report,
        text: formatReport(report),
        exitCode: report.failures > 0 ? EXIT.failed : EXIT.ok,
        notes: reconcileNotes(report),
      };
    };
  },
};

/** What went wrong or needs attention in a reconcile run, for stderr. */
export function reconcileNotes(report: ReconcileReport): string[] {
  const notes: string[] = [];
  if (report.failures > 0) notes.push(`${count(report.failures, 'repair')} failed: run reconcile again (--verbose shows why)`);
  if (report.busy > 0) notes.push(`${count(report.busy, 'repair')} waited for a busy customer: the next run does them`);
  if (report.nearCeiling) {
    notes.push(`the account has ${report.accountKeys} API keys, ${report.ceilingUsedPercent}% of the ${report.keyCeiling} ceiling`);
  }
  return notes;
}

const KINDS: readonly ReconcileAction['kind'][] = ['delete-orphan', 'repair-plan', 'mark-missing', 'close-orphan-record'];

function formatReport(report: ReconcileReport): string {
  return `reconcile${report.dryRun ? ' (dry run: nothing changed)' : ''} at ${report.at}\n${reconcileTables(report)}`;
}

/** The report's counts and actions as tables, each line ending with a newline. */
export function reconcileTables(report: ReconcileReport): string {
  const lines = [
    table([
      ['account keys', `${report.accountKeys} of ${report.keyCeiling} (${report.ceilingUsedPercent}%)`],
      ['managed keys', String(report.managedKeys)],
      ['tracked records', String(report.trackedRecords)],
      ['too young to judge', String(report.skippedTooYoung)],
    ]),
    table([
      ['ACTION', 'FOUND', 'DONE'],
      ...KINDS.map((kind) => [kind, String(report.found[kind]), String(report.done[kind])]),
      ['(busy)', '', String(report.busy)],
      ['(failed)', '', String(report.failures)],
    ]),
  ];
  if (report.actions.length > 0) {
    lines.push(
      table(
        report.actions.map((action) => [
          action.kind,
          action.keyId,
          action.customerId ?? '-',
          action.kind === 'repair-plan'
            ? `${action.fromPlans.join('+') || 'no plan'} -> ${action.toPlan}`
            : action.kind === 'delete-orphan'
              ? action.reason
              : '',
        ]),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}
