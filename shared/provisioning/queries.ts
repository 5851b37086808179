import { NotFoundError } from '../errors';
import type { RegistrationStore } from '../core/ports';
import type { Customer, Registration } from '../core/registration';

/** What a registration looks like from outside: never the key value, never internal detail. */
export interface RegistrationView {
  registrationId: string;
  customerId: string;
  tier: string;
  status: Registration['state'];
  keyId?: string | undefined;
  keyFingerprint?: string | undefined;
  failureReason?: string | undefined;
  createdAt: string;
  updatedAt: string;
}

export interface CustomerView {
  customerId: string;
  email: string;
  tier: string;
  status: string;
  keys: {
    keyId: string;
    state: string;
    fingerprint?: string | undefined;
    createdAt: string;
    rotateAt?: string | undefined;
    retireAt?: string | undefined;
  }[];
}

export function toRegistrationView(registration: Registration): RegistrationView {
  return {
    registrationId: registration.registrationId,
    customerId: registration.customerId,
    tier: registration.tier,
    status: registration.state,
    keyId: registration.keyId,
    keyFingerprint: registration.keyFingerprint,
    failureReason: registration.failureReason,
    createdAt: registration.createdAt,
    updatedAt: registration.updatedAt,
  };
}

export function toCustomerView(customer: Customer): CustomerView {
  return {
    customerId: customer.customerId,
    email: customer.email,
    tier: customer.tier,
    status: customer.status,
    keys: customer.keys.map((key) => ({
      keyId: key.keyId,
      state: key.state,
      fingerprint: key.fingerprint,
      createdAt: key.createdAt,
      rotateAt: key.rotateAt,
      retireAt: key.retireAt,
    })),
  };
}

/** @throws NotFoundError */
export async function getRegistrationStatus(registrationId: string, store: Pick<RegistrationStore, 'getRegistration'>): Promise<RegistrationView> {
  const registration = await store.getRegistration(registrationId);
  if (!registration) throw new NotFoundError(`no registration ${registrationId}`);
  return toRegistrationView(registration);
}

/** @throws NotFoundError */
export async function describeCustomer(customerId: string, store: Pick<RegistrationStore, 'getCustomer'>): Promise<CustomerView> {
  const customer = await store.getCustomer(customerId);
  if (!customer) throw new NotFoundError(`no customer ${customerId}`);
  return toCustomerView(customer);
}
