/** Item keys of the one table (DESIGN §2), shared by its adapters. */

export const PROFILE_SK = 'PROFILE';
export const regKey = (registrationId: string) => ({ pk: `REG#${registrationId}`, sk: 'REG' });
export const customerPk = (customerId: string) => `CUSTOMER#${customerId}`;
export const keyItemKey = (customerId: string, keyId: string) => ({ pk: customerPk(customerId), sk: `KEY#${keyId}` });

/** Name of the sparse GSI over (dueType, dueAt): an item is in it only while a job has work on it. */
export const DUE_INDEX = 'due';

/**
 * Partitions of the due index. A key moves ROTATE -> (REMIND ->) RETIRE -> DELETE; an orphan
 * waits in CLEANUP for the reconciler. An unfinished registration waits in RESUME until it
 * finishes, or until the sweep resumes it.
 */
export const DUE = {
  rotate: 'ROTATE',
  remind: 'REMIND',
  retire: 'RETIRE',
  delete: 'DELETE',
  cleanup: 'CLEANUP',
  resume: 'RESUME',
} as const;
export type DueType = (typeof DUE)[keyof typeof DUE];

/** The partitions that hold key items (RESUME holds registrations). */
export const KEY_DUE_TYPES: readonly DueType[] = [DUE.rotate, DUE.remind, DUE.retire, DUE.delete, DUE.cleanup];

export const DAY_MS = 86_400_000;
