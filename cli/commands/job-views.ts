import type { StalledRegistration } from '../../shared/provisioning/resume-registrations';
import type { DueKey, DueRetirements, RetirementRunReport } from '../../shared/rotation/rotation-jobs';
import type { ScheduledRotationPreview, ScheduledRotationReport } from '../../shared/shards/scheduled-rotation';
import type { InterruptedOperation } from '../../shared/sweep/finish-interrupted';
import type { SweepPreview, SweepReport } from '../../shared/sweep/sweep';
import { count, shortTime, table } from '../command';

/** A job's report for people: the lines under the heading, notes for stderr, and whether part of it failed. */
export interface JobView {
  /** What the run did or would do, in a few words, for the heading. */
  summary: string;
  /** Tables; each line ends with a newline, or empty. */
  body: string;
  notes: string[];
  failed: boolean;
}

const lines = (...blocks: string[]) => blocks.filter(Boolean).map((block) => `${block}\n`).join('');

export function rotationView(report: ScheduledRotationReport): JobView {
  const drains = report.drains ?? [];
  const drainsFailed = drains.reduce((sum, drain) => sum + drain.failed, 0);
  const notes: string[] = [];
  if (report.failed > 0) notes.push(`${count(report.failed, 'rotation')} failed: those keys stay due for the next run (--verbose shows why)`);
  if (report.busy > 0) notes.push(`${count(report.busy, 'key')} waited for a busy customer: the next run rotates them`);
  if (report.remaining > 0) notes.push(`${count(report.remaining, 'key')} still due: run the job again, or wait for its schedule`);
  if (drainsFailed > 0) notes.push(`${count(drainsFailed, 'drain move')} failed: the next run tries again`);
  return {
    summary: `${count(report.rotated, 'key')} rotated`,
    body: lines(
      table([
        ['rotated', String(report.rotated)],
        ['skipped', String(report.skipped)],
        ['busy', String(report.busy)],
        ['failed', String(report.failed)],
        ['still due', String(report.remaining)],
      ]),
      drains.length === 0
        ? ''
        : table([
            ['DRAINING SHARD', 'MOVED', 'SKIPPED', 'BUSY', 'FAILED', 'MORE LEFT'],
            ...drains.map((drain) => [
              drain.shard,
              String(drain.moved),
              String(drain.skipped),
              String(drain.busy),
              String(drain.failed),
              drain.moreLeft ? 'yes' : 'no',
            ]),
          ]),
    ),
    notes,
    failed: report.failed + drainsFailed > 0,
  };
}

export function rotationPreviewView(preview: ScheduledRotationPreview): JobView {
  const { due, drains } = preview;
  const moves = drains.reduce((sum, drain) => sum + drain.keys.length, 0);
  const notes: string[] = [];
  if (due.totalDue > due.keys.length) {
    notes.push(`${count(due.totalDue, 'key')} due, more than one batch (${preview.batchSize}): later runs take the rest`);
  }
  return {
    summary:
      `would rotate ${count(due.keys.length, 'key')} (${due.totalDue} due in all, batch ${preview.batchSize})` +
      (drains.length > 0 ? ` and move up to ${count(moves, 'key')} out of draining shards` : ''),
    body: lines(
      due.keys.length === 0 ? '' : keyTable(['KEY', 'CUSTOMER', 'SHARD', 'ROTATE AT'], due.keys, (key) => [shortTime(key.rotateAt)]),
      moves === 0
        ? ''
        : table([
            ['DRAINING SHARD', 'KEY', 'CUSTOMER'],
            ...drains.flatMap((drain) => drain.keys.map((key) => [drain.shard, key.keyId, key.customerId])),
          ]),
    ),
    notes,
    failed: false,
  };
}

export function retirementView(report: RetirementRunReport): JobView {
  const notes: string[] = [];
  if (report.failed > 0) notes.push(`${count(report.failed, 'step')} failed: those keys stay due for the next run (--verbose shows why)`);
  if (report.busy > 0) notes.push(`${count(report.busy, 'key')} waited for a busy customer: the next run takes them`);
  return {
    summary: `${count(report.reminded, 'reminder')} sent, ${count(report.disabled, 'key')} disabled, ${report.deleted} deleted`,
    body: lines(
      table([
        ['reminded', String(report.reminded)],
        ['disabled', String(report.disabled)],
        ['deleted', String(report.deleted)],
        ['busy', String(report.busy)],
        ['failed', String(report.failed)],
      ]),
    ),
    notes,
    failed: report.failed > 0,
  };
}

const RETIREMENT_STEPS = [
  ['remind', 'remind'],
  ['retire', 'disable'],
  ['delete', 'delete'],
] as const satisfies readonly (readonly [keyof DueRetirements, string])[];

export function retirementPreviewView(preview: DueRetirements & { batchSize: number }): JobView {
  const rows = RETIREMENT_STEPS.flatMap(([step, verb]) =>
    preview[step].keys.map((key) => [verb, key.keyId, key.customerId, key.shard, key.state, shortTime(key.retireAt)]),
  );
  const notes = RETIREMENT_STEPS.filter(([step]) => preview[step].totalDue > preview[step].keys.length).map(
    ([step, verb]) => `${count(preview[step].totalDue, 'key')} due to ${verb}, more than one batch (${preview.batchSize}): later runs take the rest`,
  );
  return {
    summary:
      `would send ${count(preview.remind.keys.length, 'reminder')}, disable ${count(preview.retire.keys.length, 'key')}, ` +
      `delete ${count(preview.delete.keys.length, 'key')} (batch ${preview.batchSize} per step)`,
    body: lines(rows.length === 0 ? '' : table([['STEP', 'KEY', 'CUSTOMER', 'SHARD', 'STATE', 'RETIRE AT'], ...rows])),
    notes,
    failed: false,
  };
}

export function sweepView(report: SweepReport): JobView {
  const { registrations: r, interrupted: i } = report;
  const notes: string[] = [];
  if (r.failed > 0) notes.push(`${count(r.failed, 'registration')} ended FAILED: \`keyplan status --registration ID\` shows why`);
  if (r.retryLater > 0) notes.push(`${count(r.retryLater, 'registration')} could not be finished yet: due again later (--verbose shows why)`);
  if (r.givenUp > 0) notes.push(`${count(r.givenUp, 'registration')} out of resume attempts: left for an operator`);
  if (i.failed > 0) notes.push(`${count(i.failed, 'interrupted operation')} could not be finished: the next run tries again`);
  if (r.busy + i.busy > 0) notes.push(`${count(r.busy + i.busy, 'item')} waited for a busy customer or registration: the next run takes them`);
  return {
    summary: `${count(r.resumed, 'registration')} resumed, ${count(i.finished, 'interrupted operation')} finished`,
    body: lines(
      table([
        ['registrations', `${r.resumed} resumed, ${r.busy} busy, ${r.failed} failed, ${r.retryLater} to retry later, ${r.givenUp} given up`],
        ['interrupted', `${i.finished} finished, ${i.nothingLeft} with nothing left to do, ${i.busy} busy, ${i.failed} failed`],
      ]),
    ),
    notes,
    failed: r.failed + r.retryLater + r.givenUp + i.failed > 0,
  };
}

export function sweepPreviewView(preview: SweepPreview): JobView {
  const resumed = preview.registrations.filter((registration) => registration.action === 'resume').length;
  const givenUp = preview.registrations.length - resumed;
  return {
    summary:
      `would resume ${count(resumed, 'registration')}` +
      (givenUp > 0 ? `, give up ${givenUp}` : '') +
      ` and finish ${count(preview.interrupted.length, 'interrupted operation')} (batch ${preview.batchSize} each)`,
    body: lines(registrationTable(preview.registrations), interruptedTable(preview.interrupted)),
    notes: givenUp > 0 ? [`${count(givenUp, 'registration')} out of resume attempts would be left for an operator`] : [],
    failed: false,
  };
}

function keyTable(heading: string[], keys: readonly DueKey[], more: (key: DueKey) => string[]): string {
  return table([heading, ...keys.map((key) => [key.keyId, key.customerId, key.shard, ...more(key)])]);
}

function registrationTable(registrations: readonly StalledRegistration[]): string {
  if (registrations.length === 0) return '';
  return table([
    ['REGISTRATION', 'CUSTOMER', 'STATE', 'RESUMES', 'UPDATED', 'ACTION'],
    ...registrations.map((r) => [r.registrationId, r.customerId, r.state, String(r.resumeAttempts), shortTime(r.updatedAt), r.action]),
  ]);
}

function interruptedTable(operations: readonly InterruptedOperation[]): string {
  if (operations.length === 0) return '';
  return table([
    ['CUSTOMER', 'INTERRUPTED OPERATION', 'KEY'],
    ...operations.map((operation) => [operation.customerId, operation.operation, operation.keyId ?? '-']),
  ]);
}
