import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config';
import { customerIdSchema } from '../../shared/core/schemas';
import { ValidationError } from '../../shared/errors';
import { registrationRequestSchema } from '../../shared/provisioning/request-schema';
import { usageRangeSchema } from '../../shared/usage/get-customer-usage';
import { validate } from '../../shared/validation';

/*
 * The schemas are zod/mini, which has no messages of its own: without the English locale that
 * shared/schema.ts loads, every refusal below would read "Invalid input". These pin the words a
 * caller or an operator reads where the schemas use zod's own messages rather than keyplan's.
 */

const refusalOf = (act: () => unknown) => {
  try {
    act();
  } catch (error) {
    return error instanceof ValidationError ? { field: error.field, message: error.message } : String(error);
  }
  return 'accepted';
};

const valid = { customerId: 'c-1', email: 'ada@example.com', tier: 'free' };

describe('validate', () => {
  it.each([
    ['missing', undefined, 'customerId: Invalid input: expected string, received undefined'],
    ['empty', '', 'customerId: Too small: expected string to have >=1 characters'],
    ['too long', 'c'.repeat(65), 'customerId: Too big: expected string to have <=64 characters'],
    ['a number', 12, 'customerId: Invalid input: expected string, received number'],
    ['outside the alphabet', 'a b', 'customerId: use letters, digits and . _ : - only'],
  ])('names the field and what is wrong with an id that is %s', (_, value, message) => {
    expect(refusalOf(() => validate(customerIdSchema, value, 'customerId'))).toEqual({ field: 'customerId', message });
  });

  it('names the first field of a body that is wrong, in the words of its rule', () => {
    const schema = registrationRequestSchema(['free', 'pro']);

    expect(refusalOf(() => validate(schema, { ...valid, email: undefined }))).toEqual({
      field: 'email',
      message: 'email: Invalid input: expected string, received undefined',
    });
    expect(refusalOf(() => validate(schema, { ...valid, reactivate: 'yes' }))).toEqual({
      field: 'reactivate',
      message: 'reactivate: Invalid input: expected boolean, received string',
    });
    expect(refusalOf(() => validate(schema, [valid]))).toEqual({
      field: 'body',
      message: 'body: Invalid input: expected object, received array',
    });
    expect(refusalOf(() => validate(schema, { ...valid, admin: true }))).toEqual({
      field: 'admin',
      message: 'unknown field "admin"',
    });
  });

  it('returns the parsed value: a name trimmed, a range as given', () => {
    expect(validate(registrationRequestSchema(), { ...valid, name: '  Ada  ' })).toEqual({ ...valid, name: 'Ada' });
    expect(validate(usageRangeSchema, { from: '2026-01-01', to: '2026-03-31' })).toEqual({
      from: '2026-01-01',
      to: '2026-03-31',
    });
  });
});

describe('loadConfig messages', () => {
  const complete = { TABLE_NAME: 't', TIER_MAP: '{"free":"p1"}', SENDER_EMAIL: 'keys@example.com' };

  it.each([
    ['ROTATION_DAYS', '0', 'ROTATION_DAYS Too small: expected number to be >=1'],
    ['ROTATION_DAYS', 'soon', 'ROTATION_DAYS Invalid input: expected number, received NaN'],
    ['ROTATION_DAYS', '1.5', 'ROTATION_DAYS Invalid input: expected int, received number'],
    ['SENDER_EMAIL', 'nobody', 'SENDER_EMAIL Invalid email address'],
    ['QUEUE_URL', 'not a url', 'QUEUE_URL Invalid URL'],
    ['TIER_MAP', '{"Free Tier":"p"}', 'TIER_MAP Invalid key in record'],
  ])('names %s and what is wrong with "%s"', (name, value, message) => {
    expect(() => loadConfig({ ...complete, [name]: value })).toThrow(`keyplan configuration is invalid: ${message}`);
  });
});
