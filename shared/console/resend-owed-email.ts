import type { RegistrationState } from '../core/registration';
import { NotFoundError } from '../errors';
import { type ProvisioningDeps, provisionKey } from '../provisioning/provision-key';

export interface ResendResult {
  customerId: string;
  registrationId: string;
  /** Whether an email was owed: only an EMAIL_PENDING registration owes one. */
  owed: boolean;
  /** The registration's state afterwards: ACTIVE once the email went out. */
  state: RegistrationState;
}

/**
 * Sends the email a customer's registration still owes, now, the way the resume sweep would
 * (resumeStalledRegistrations): the same saga with the registration's own request, which finds
 * the key already made and recorded, sends its value and settles the registration ACTIVE. A
 * registration that owes nothing is left alone.
 *
 * @throws NotFoundError when there is no such customer (or its registration is gone)
 * @throws RegistrationInProgressError while another attempt holds the registration
 * @throws CustomerBusyError while another operation holds the customer
 * @throws TransientAwsError when the email still cannot be sent; it stays owed
 */
export async function resendOwedEmail(customerId: string, now: Date, deps: ProvisioningDeps): Promise<ResendResult> {
  const customer = await deps.store.getCustomer(customerId);
  if (!customer) throw new NotFoundError(`no customer ${customerId}`);
  const registration = await deps.store.getRegistration(customer.registrationId);
  if (!registration) throw new NotFoundError(`no registration ${customer.registrationId} of customer ${customerId}`);
  const { registrationId } = registration;
  if (registration.state !== 'EMAIL_PENDING') return { customerId, registrationId, owed: false, state: registration.state };
  const { email, tier, name, reactivate } = registration;
  const result = await provisionKey({ registrationId, request: { customerId, email, tier, name, reactivate }, now }, deps);
  return { customerId, registrationId, owed: true, state: result.registration.state };
}
