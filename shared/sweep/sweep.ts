import {
  findStalledRegistrations,
  type ResumeDeps,
  type ResumeRunReport,
  resumeStalledRegistrations,
  type StalledRegistration,
} from '../provisioning/resume-registrations';
import {
  type FinishDeps,
  type FinishRunReport,
  findInterruptedOperations,
  finishInterruptedOperations,
  type InterruptedOperation,
} from './finish-interrupted';

export interface SweepReport {
  registrations: ResumeRunReport;
  interrupted: FinishRunReport;
}

/**
 * One run of the whole sweep (`keyplan jobs run resume-registrations`): the registrations nobody
 * finished whose resume time has passed by `now` (the schedule's time), then the operations that
 * died holding their customer's lease; each half at most `batchSize`. Deployed, each half is a
 * function of its own on the one schedule (functions/resume-registrations,
 * functions/finish-operations), so that each bundles and may call only its half.
 */
export async function runSweep(now: Date, batchSize: number, deps: ResumeDeps & FinishDeps): Promise<SweepReport> {
  const registrations = await resumeStalledRegistrations(now, batchSize, deps);
  const interrupted = await finishInterruptedOperations(now, batchSize, deps);
  return { registrations, interrupted };
}

export interface SweepPreview {
  batchSize: number;
  registrations: StalledRegistration[];
  interrupted: InterruptedOperation[];
}

/**
 * What runSweep(at, batchSize) would take, changing nothing: the stalled registrations as of `at`,
 * and the interrupted operations by the clock (as the run judges leases).
 */
export async function previewSweep(at: Date, batchSize: number, deps: ResumeDeps & FinishDeps): Promise<SweepPreview> {
  const [registrations, interrupted] = await Promise.all([
    findStalledRegistrations(at, batchSize, deps),
    findInterruptedOperations(batchSize, deps),
  ]);
  return { batchSize, registrations, interrupted };
}
