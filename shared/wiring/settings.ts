import type { RegistrationTableOptions } from '../aws/registration-table';
import type { SesMailerOptions } from '../aws/ses-mailer';
import { ConfigError, type CoreConfig, type EnqueueConfig } from '../config';
import type { TierChangeDeps } from '../customers/change-tier';
import type { RevocationDeps } from '../customers/revoke-customer';
import type { ProvisioningSettings } from '../provisioning/provision-key';
import type { ReconcileSettings } from '../reconcile/ports';
import type { RotationSettings } from '../rotation/rotate-key';

/*
 * What the compositions take from the configuration: the use cases' settings and the adapters'
 * options. Plain objects only, so a composition that imports one helper bundles nothing else.
 */

/** Leases are times of the clock, never of a request's or a schedule event's time. */
export const clock = () => new Date();

/** How often the sweep runs (serverless.yml's resume schedule): a blocked customer's wait, at worst. */
const sweepSeconds = (config: CoreConfig) => config.sweepMinutes * 60;

export function provisioningSettings(config: CoreConfig): ProvisioningSettings {
  return {
    shards: config.shards,
    keyNamePrefix: config.keyNamePrefix,
    stage: config.stage,
    rotationDays: config.rotationDays,
    leaseSeconds: config.leaseSeconds,
    sweepSeconds: sweepSeconds(config),
  };
}

export function rotationSettings(config: CoreConfig): RotationSettings {
  return {
    shards: config.shards,
    keyNamePrefix: config.keyNamePrefix,
    stage: config.stage,
    rotationDays: config.rotationDays,
    graceDays: config.graceDays,
    reminderDays: config.reminderDays,
    keyRetentionDays: config.keyRetentionDays,
    leaseSeconds: config.leaseSeconds,
    sweepSeconds: sweepSeconds(config),
  };
}

export function tierChangeSettings(config: CoreConfig): TierChangeDeps['settings'] {
  return { shards: config.shards, leaseSeconds: config.leaseSeconds, sweepSeconds: sweepSeconds(config) };
}

export function revocationSettings(config: CoreConfig): RevocationDeps['settings'] {
  return { keyRetentionDays: config.keyRetentionDays, leaseSeconds: config.leaseSeconds, sweepSeconds: sweepSeconds(config) };
}

export function reconcileSettings(config: CoreConfig): ReconcileSettings {
  return {
    keyNamePrefix: config.keyNamePrefix,
    stage: config.stage,
    shards: config.shards,
    minKeyAgeMinutes: config.reconcileMinKeyAgeMinutes,
    leaseSeconds: config.leaseSeconds,
    sweepSeconds: sweepSeconds(config),
  };
}

/** The registration table's options but its client. */
export function registrationTableOptions(config: CoreConfig): Omit<RegistrationTableOptions, 'client'> {
  return {
    tableName: config.tableName,
    retentionDays: config.registrationRetentionDays,
    resumeAfterSeconds: config.resumeAfterMinutes * 60,
  };
}

/** The mailer's options but its client. */
export function mailerOptions(config: CoreConfig): Omit<SesMailerOptions, 'client'> {
  return { sender: config.senderEmail, configurationSet: config.sesConfigurationSet };
}

/** @throws ConfigError without QUEUE_URL: only the functions that enqueue need it. */
export function queueUrlOf(config: EnqueueConfig): string {
  if (!config.queueUrl) throw new ConfigError('keyplan configuration is invalid: QUEUE_URL is not set');
  return config.queueUrl;
}
