import type { CustomerView, RegistrationView } from '../../shared/provisioning/queries';
import { shortTime, table } from '../command';

/** A registration for people: what it is, where it stands, and never the key value. */
export function formatRegistration(view: RegistrationView, heading = `registration ${view.registrationId}: ${view.status}`): string {
  const rows: string[][] = [
    ['customer', view.customerId],
    ['tier', view.tier],
  ];
  if (view.keyId) rows.push(['key', `${view.keyId}${view.keyFingerprint ? ` (fingerprint ${view.keyFingerprint})` : ''}`]);
  if (view.failureReason) rows.push(['failure', view.failureReason]);
  rows.push(['created', shortTime(view.createdAt)], ['updated', shortTime(view.updatedAt)]);
  return `${heading}\n${table(rows)}\n`;
}

export function formatCustomer(view: CustomerView): string {
  const keys =
    view.keys.length === 0
      ? '  (no keys)'
      : table([
          ['KEY', 'STATE', 'FINGERPRINT', 'CREATED', 'ROTATE AT', 'RETIRE AT'],
          ...view.keys.map((key) => [
            key.keyId,
            key.state,
            key.fingerprint ?? '-',
            shortTime(key.createdAt),
            shortTime(key.rotateAt),
            shortTime(key.retireAt),
          ]),
        ]);
  return `customer ${view.customerId}: ${view.status}\n${table([
    ['email', view.email],
    ['tier', view.tier],
  ])}\nkeys\n${keys}\n`;
}
