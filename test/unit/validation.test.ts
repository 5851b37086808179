import { describe, expect, expectTypeOf, it } from 'vitest';
import { customerIdSchema, registrationIdSchema, tierSchema } from '../../shared/core/schemas';
import { ValidationError } from '../../shared/errors';
import { provisioningMessageSchema, registrationRequestSchema } from '../../shared/provisioning/request-schema';
import { usageRangeSchema } from '../../shared/usage/get-customer-usage';
import {
  boolean,
  fail,
  type Infer,
  integer,
  isoDate,
  isoDateTime,
  number,
  object,
  oneOf,
  optional,
  refine,
  text,
  validate,
} from '../../shared/validation';

/*
 * Issue 17: a refusal is a sentence a person can act on, naming the field as they wrote it
 * ("customerId is required"), never a library's "expected string, received undefined". These pin
 * the words the HTTP API (problem+json `detail`), the import and the CLI all show.
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

describe('the identifiers', () => {
  it.each([
    ['missing', undefined, 'customerId is required'],
    ['empty', '', 'customerId must not be empty'],
    ['too long', 'c'.repeat(65), 'customerId must be at most 64 characters'],
    ['a number', 12, 'customerId must be a string'],
    ['null', null, 'customerId must be a string'],
    ['outside the alphabet', 'a b', 'customerId may contain only letters, digits and . _ : -'],
    ['a slash', 'a/b', 'customerId may contain only letters, digits and . _ : -'],
    ['starting with punctuation', '-ab', 'customerId must start with a letter or digit'],
  ])('names the field and what is wrong with an id that is %s', (_, value, message) => {
    expect(refusalOf(() => validate(customerIdSchema, value, 'customerId'))).toEqual({ field: 'customerId', message });
  });

  it('takes ids of every character the pattern allows, up to their length', () => {
    expect(validate(customerIdSchema, 'A9._:-z', 'customerId')).toBe('A9._:-z');
    expect(validate(customerIdSchema, 'c'.repeat(64), 'customerId')).toBe('c'.repeat(64));
    expect(validate(registrationIdSchema, 'r'.repeat(128), 'id')).toBe('r'.repeat(128));
    expect(refusalOf(() => validate(registrationIdSchema, 'r'.repeat(129), 'Idempotency-Key'))).toEqual({
      field: 'Idempotency-Key',
      message: 'Idempotency-Key must be at most 128 characters',
    });
  });

  it('lists the tiers', () => {
    expect(refusalOf(() => validate(tierSchema(['free', 'pro']), 'FREE', 'tier'))).toEqual({
      field: 'tier',
      message: 'tier must be one of: free, pro',
    });
  });
});

describe('the registration request', () => {
  const schema = registrationRequestSchema(['free', 'pro']);

  it.each([
    ['customerId missing', { email: valid.email, tier: 'free' }, 'customerId', 'customerId is required'],
    ['email missing', { ...valid, email: undefined }, 'email', 'email is required'],
    ['an email with a display name', { ...valid, email: 'Ada <ada@example.com>' }, 'email', 'email must be one plain email address'],
    ['an email too long', { ...valid, email: `${'a'.repeat(250)}@example.com` }, 'email', 'email must be at most 254 characters'],
    ['tier missing', { ...valid, tier: undefined }, 'tier', 'tier is required'],
    ['an unknown tier', { ...valid, tier: 'gold' }, 'tier', 'tier must be one of: free, pro'],
    [
      'a name with a newline',
      { ...valid, name: 'Ada\nBcc: x' },
      'name',
      'name must be 1 to 100 characters, without control, bidirectional or invisible formatting characters',
    ],
    ['a name with a lone surrogate', { ...valid, name: 'Ada\uD800' }, 'name', 'name must be well-formed Unicode (no lone surrogates)'],
    ['reactivate as text', { ...valid, reactivate: 'yes' }, 'reactivate', 'reactivate must be true or false'],
    ['an unknown field', { ...valid, admin: true }, 'admin', 'unknown field "admin"'],
    ['an inherited name as a field', { ...valid, constructor: 'x' }, 'constructor', 'unknown field "constructor"'],
    ['an array', [valid], 'body', 'the body must be a JSON object'],
    ['null', null, 'body', 'the body must be a JSON object'],
  ])('refuses %s in words that name the field', (_, body, field, message) => {
    expect(refusalOf(() => validate(schema, body))).toEqual({ field, message });
  });

  it('names a misspelt field rather than the one it stands in for', () => {
    const { email, ...rest } = valid;

    expect(refusalOf(() => validate(schema, { ...rest, emial: email }))).toEqual({ field: 'emial', message: 'unknown field "emial"' });
  });

  it('takes any tier name without a tier list, the saga decides (a queued message)', () => {
    expect(validate(registrationRequestSchema(), { ...valid, tier: 'legacy' })).toEqual({ ...valid, tier: 'legacy' });
    expect(refusalOf(() => validate(registrationRequestSchema(), { ...valid, tier: 't'.repeat(33) }))).toEqual({
      field: 'tier',
      message: 'tier must be at most 32 characters',
    });
  });

  it('returns the parsed value: a name trimmed, absent fields absent, a range as given', () => {
    expect(validate(schema, { ...valid, name: '  Ada  ' })).toEqual({ ...valid, name: 'Ada' });
    expect(Object.keys(validate(schema, valid))).toEqual(['customerId', 'email', 'tier']);
    expect(validate(usageRangeSchema, { from: '2026-01-01', to: '2026-03-31' })).toEqual({ from: '2026-01-01', to: '2026-03-31' });
  });

  it('names a nested field by its path in a queue message', () => {
    expect(refusalOf(() => validate(provisioningMessageSchema, { registrationId: 'r-1', request: { ...valid, customerId: undefined } }))).toEqual({
      field: 'request.customerId',
      message: 'request.customerId is required',
    });
    expect(refusalOf(() => validate(provisioningMessageSchema, { registrationId: 'r-1', request: { ...valid, x: 1 } }))).toEqual({
      field: 'request.x',
      message: 'unknown field "request.x"',
    });
  });

  it('infers the request type, optional fields optional', () => {
    expectTypeOf(validate(schema, valid)).toEqualTypeOf<{
      customerId: string;
      email: string;
      tier: string;
      name?: string | undefined;
      reactivate?: boolean | undefined;
    }>();
  });
});

describe('the usage range', () => {
  it.each([
    ['no dates', {}, 'from', 'from is required'],
    ['a malformed date', { from: '2026-1-01', to: '2026-01-31' }, 'from', 'from must be a date YYYY-MM-DD'],
    ['a day that does not exist', { from: '2026-02-01', to: '2026-02-30' }, 'to', 'to must be a date YYYY-MM-DD'],
    ['from after to', { from: '2026-02-02', to: '2026-02-01' }, 'from', 'from must not be after to'],
    ['91 days', { from: '2026-01-01', to: '2026-04-01' }, 'to', 'to must be at most 89 days after from: a range is at most 90 days'],
  ])('refuses %s', (_, range, field, message) => {
    expect(refusalOf(() => validate(usageRangeSchema, range))).toEqual({ field, message });
  });
});

describe('the kit', () => {
  it('text: bounds, pattern with its own words, trim after the checks', () => {
    const code = text({ min: 2, max: 3, pattern: /^[a-z ]+$/, patternMessage: 'may contain only a-z', trim: true });

    expect(refusalOf(() => code('a', 'code'))).toEqual({ field: 'code', message: 'code must be at least 2 characters' });
    expect(refusalOf(() => code('abcd', 'code'))).toEqual({ field: 'code', message: 'code must be at most 3 characters' });
    expect(refusalOf(() => code('A1', 'code'))).toEqual({ field: 'code', message: 'code may contain only a-z' });
    expect(code(' ab', 'code')).toBe('ab');
  });

  it('oneOf: exactly one of the values', () => {
    const color = oneOf(['red', 'blue']);

    expect(color('red', 'color')).toBe('red');
    expect(refusalOf(() => color('constructor', 'color'))).toEqual({ field: 'color', message: 'color must be one of: red, blue' });
    expect(refusalOf(() => color(undefined, 'color'))).toEqual({ field: 'color', message: 'color is required' });
    expectTypeOf(color).returns.toEqualTypeOf<'red' | 'blue'>();
  });

  it.each([
    [integer({ min: 0, max: 365 }), 1.5, 'graceDays must be a whole number from 0 to 365'],
    [integer({ min: 0, max: 365 }), '3', 'graceDays must be a whole number from 0 to 365'],
    [integer({ min: 0, max: 365 }), 366, 'graceDays must be a whole number from 0 to 365'],
    [integer({ min: 1 }), 0, 'graceDays must be a whole number of at least 1'],
    [integer({ max: 9 }), 10, 'graceDays must be a whole number of at most 9'],
    [number(), Number.NaN, 'graceDays must be a number'],
    [number({ min: 0.1, max: 1000 }), Infinity, 'graceDays must be a number from 0.1 to 1000'],
    [number({ max: 1, message: 'must be a fraction' }), 2, 'graceDays must be a fraction'],
    [integer(), undefined, 'graceDays is required'],
  ])('numbers: %#', (schema, value, message) => {
    expect(refusalOf(() => schema(value, 'graceDays'))).toEqual({ field: 'graceDays', message });
  });

  it('numbers within bounds pass, bounds included', () => {
    expect(integer({ min: 0, max: 365 })(0, 'n')).toBe(0);
    expect(integer({ min: 0, max: 365 })(365, 'n')).toBe(365);
    expect(number({ min: 0.1 })(0.1, 'n')).toBe(0.1);
  });

  it('boolean and optional', () => {
    expect(boolean()(false, 'flag')).toBe(false);
    expect(refusalOf(() => boolean()(0, 'flag'))).toEqual({ field: 'flag', message: 'flag must be true or false' });
    expect(optional(boolean())(undefined, 'flag')).toBeUndefined();
    expect(refusalOf(() => optional(boolean())(null, 'flag'))).toEqual({ field: 'flag', message: 'flag must be true or false' });
  });

  it('object: drops unknown fields unless strict, names nested fields by path', () => {
    const event = object({ id: text({ min: 1 }), detail: object({ tier: text({ min: 1 }) }) });

    expect(event({ id: 'e-1', extra: 1, detail: { tier: 'pro', more: 2 } }, '')).toEqual({ id: 'e-1', detail: { tier: 'pro' } });
    expect(refusalOf(() => event({ id: 'e-1', detail: {} }, ''))).toEqual({ field: 'detail.tier', message: 'detail.tier is required' });
    expect(refusalOf(() => event({ id: 'e-1', detail: 'pro' }, ''))).toEqual({ field: 'detail', message: 'detail must be a JSON object' });
    expect(refusalOf(() => event({ id: 'e-1', detail: { tier: 'pro' } }, 'event'))).toBe('accepted');
    expectTypeOf<Infer<typeof event>>().toEqualTypeOf<{ id: string; detail: { tier: string } }>();
  });

  it('refine: its rule in the field’s sentence, after the schema’s own checks', () => {
    const even = refine(integer(), (n) => n % 2 === 0, 'must be even');

    expect(even(4, 'n')).toBe(4);
    expect(refusalOf(() => even(3, 'n'))).toEqual({ field: 'n', message: 'n must be even' });
    expect(refusalOf(() => even('3', 'n'))).toEqual({ field: 'n', message: 'n must be a whole number' });
  });

  it('fail: the body when no field is named', () => {
    expect(refusalOf(() => fail('', 'must not be empty'))).toEqual({ field: 'body', message: 'the body must not be empty' });
  });

  it.each([
    ['2026-01-31T09:30:00Z', true],
    ['2026-01-31T09:30:00.123+02:00', true],
    ['2024-02-29T23:59:59-05:30', true],
    ['2023-02-29T00:00:00Z', false],
    ['2026-02-30T00:00:00Z', false],
    ['2026-01-31T09:30Z', false],
    ['2026-01-31T09:30:00', false],
    ['2026-01-31T24:00:00Z', false],
    ['2026-01-31 09:30:00Z', false],
  ])('isoDateTime: %s is %s', (value, accepted) => {
    expect(refusalOf(() => isoDateTime()(value, 'time'))).toEqual(
      accepted ? 'accepted' : { field: 'time', message: 'time must be a date and time such as 2026-01-31T09:30:00Z' },
    );
  });

  it.each([
    ['2024-02-29', true],
    ['2023-02-29', false],
    ['2026-13-01', false],
    ['2026-02-01T00:00:00Z', false],
    ['２０２６-01-01', false],
  ])('isoDate: %s is %s', (value, accepted) => {
    expect(refusalOf(() => isoDate()(value, 'from'))).toEqual(accepted ? 'accepted' : { field: 'from', message: 'from must be a date YYYY-MM-DD' });
  });
});
