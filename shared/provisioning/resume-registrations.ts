import type { Registration } from '../core/registration';
import { CustomerBusyError, isPermanent, RegistrationInProgressError } from '../errors';
import { logger } from '../logger';
import { countMetric } from '../metrics';
import type { StalledRegistrations } from './ports';
import { type ProvisioningDeps, provisionKey } from './provision-key';

/** After this many resumes (about three days with the doubling backoff) an operator takes over. */
export const MAX_RESUME_ATTEMPTS = 10;

export interface ResumeRunReport {
  resumed: number;
  /** Another attempt holds the registration; it stays due. */
  busy: number;
  /** Ended FAILED (recorded, with its reason) or refused for good. */
  failed: number;
  /** Still unfinished; due again later. */
  retryLater: number;
  /** Out of attempts: left for an operator. */
  givenUp: number;
}

export type ResumeDeps = ProvisioningDeps & { stalled: StalledRegistrations };

/**
 * The sweep: resumes registrations nobody finished (their caller gave up, the worker's message
 * was lost, a Lambda died mid-flow, or the email is still owed) through the same saga, so a key
 * that was already made is found by its name and never made twice. At most `limit` per run.
 */
export async function resumeStalledRegistrations(now: Date, limit: number, deps: ResumeDeps): Promise<ResumeRunReport> {
  const report: ResumeRunReport = { resumed: 0, busy: 0, failed: 0, retryLater: 0, givenUp: 0 };
  for (const registration of await deps.stalled.findStalled(now, limit)) {
    const log = { registrationId: registration.registrationId, customerId: registration.customerId, state: registration.state };
    if ((registration.resumeAttempts ?? 0) >= MAX_RESUME_ATTEMPTS) {
      await deps.stalled.stopResuming(registration, now);
      countMetric('RegistrationsAbandoned');
      logger.error('registration still unfinished after every resume; left for an operator', log);
      report.givenUp++;
      continue;
    }
    try {
      const { customerId, email, tier, name, reactivate } = registration;
      await provisionKey(
        { registrationId: registration.registrationId, request: { customerId, email, tier, name, reactivate }, now },
        deps,
      );
      report.resumed++;
    } catch (error) {
      if (error instanceof RegistrationInProgressError || error instanceof CustomerBusyError) report.busy++;
      else if (isPermanent(error)) {
        report.failed++;
      } else {
        report.retryLater++;
        logger.warn('resuming a registration failed; it is due again later', { ...log, error });
      }
    }
  }
  logger.info('resume run finished', { ...report });
  return report;
}

/** An unfinished registration the sweep would take, as a dry run shows it. */
export interface StalledRegistration {
  registrationId: string;
  customerId: string;
  state: Registration['state'];
  resumeAttempts: number;
  /** resume: through the saga again; give-up: out of attempts, left for an operator. */
  action: 'resume' | 'give-up';
  updatedAt: string;
}

/**
 * What resumeStalledRegistrations(at, limit) would take, changing nothing: the same read of the
 * RESUME partition (registrations whose resume time has passed by `at`, oldest first), and what
 * it would do with each.
 */
export async function findStalledRegistrations(
  at: Date,
  limit: number,
  deps: { stalled: Pick<StalledRegistrations, 'findStalled'> },
): Promise<StalledRegistration[]> {
  return (await deps.stalled.findStalled(at, limit)).map((registration) => ({
    registrationId: registration.registrationId,
    customerId: registration.customerId,
    state: registration.state,
    resumeAttempts: registration.resumeAttempts ?? 0,
    action: (registration.resumeAttempts ?? 0) >= MAX_RESUME_ATTEMPTS ? 'give-up' : 'resume',
    updatedAt: registration.updatedAt,
  }));
}
