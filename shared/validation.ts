import { ValidationError } from './errors';

/*
 * keyplan's validation kit: a few declarative checks whose refusals are sentences about the input
 * as its sender wrote it ("customerId is required", "tier must be one of: free, pro"). It stands
 * in for zod, which cost every Lambda bundle about 31 KiB (issue 14) and answered in its own
 * words ("expected string, received undefined", issue 17).
 *
 * A schema is a function: it returns the value as the program uses it (its return type is the
 * schema's type, `Infer<typeof schema>`), or throws a ValidationError whose `field` is `field`.
 * `field` names the input: a body field (`customerId`, `detail.tier`), a path or query parameter,
 * a header, an environment variable; '' is the whole body.
 */
export type Schema<T> = (value: unknown, field: string) => T;

export type Infer<S> = S extends Schema<infer T> ? T : never;

/**
 * One plain address: no spaces, CR/LF, quotes, commas or angle brackets, so an address can never
 * carry a display name, a second recipient or a header. (zod's email rule, kept as it was; also
 * openapi.yaml's, through shared/core/schemas.ts.)
 */
export const EMAIL_PATTERN =
  "^(?:[A-Za-z0-9_'+\\-]+\\.)*[A-Za-z0-9_'+\\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$";

/**
 * Refuses the input: `rule` completes a sentence that starts with the field's name.
 * @throws ValidationError always; its field is `body` for the whole body
 */
export function fail(field: string, rule: string): never {
  throw new ValidationError(field || 'body', `${field || 'the body'} ${rule}`);
}

/**
 * The value as `schema` makes it. `where` names the value for a refusal: a header or path
 * parameter; a body (the default) names its own fields.
 * @throws ValidationError naming the first field that is wrong
 */
export function validate<T>(schema: Schema<T>, value: unknown, where = ''): T {
  return schema(value, where);
}

const required = (value: unknown, field: string, rule: string): never =>
  fail(field, value === undefined ? 'is required' : rule);

export interface TextRules {
  /** Characters at least (UTF-16 units, as String.length counts). */
  min?: number;
  max?: number;
  /** Tested on the value as sent (before `trim`). */
  pattern?: RegExp;
  /** Completes "<field> ..." when `pattern` does not match. */
  patternMessage?: string;
  /** Drop surrounding white space from the result. */
  trim?: boolean;
}

export const text =
  ({ min = 0, max = Infinity, pattern, patternMessage = 'is not in the expected form', trim }: TextRules = {}): Schema<string> =>
  (value, field) => {
    if (typeof value !== 'string') return required(value, field, 'must be a string');
    if (value.length < min) fail(field, min > 1 ? `must be at least ${min} characters` : 'must not be empty');
    if (value.length > max) fail(field, `must be at most ${max} characters`);
    if (pattern && !pattern.test(value)) fail(field, patternMessage);
    return trim ? value.trim() : value;
  };

/** One of `values`, exactly (case included). */
export const oneOf =
  <const V extends string>(values: readonly V[]): Schema<V> =>
  (value, field) =>
    values.includes(value as V) ? (value as V) : required(value, field, `must be one of: ${values.join(', ')}`);

export interface NumberRules {
  min?: number;
  max?: number;
  /** Completes "<field> ..." in place of the rule the bounds make. */
  message?: string;
}

const numeric =
  (whole: boolean) =>
  ({ min = -Infinity, max = Infinity, message }: NumberRules = {}): Schema<number> =>
  (value, field) =>
    typeof value === 'number' && (whole ? Number.isInteger(value) : Number.isFinite(value)) && value >= min && value <= max
      ? value
      : required(
          value,
          field,
          message ??
            `must be a ${whole ? 'whole ' : ''}number${
              min > -Infinity ? (max < Infinity ? ` from ${min} to ${max}` : ` of at least ${min}`) : max < Infinity ? ` of at most ${max}` : ''
            }`,
        );

/** A whole number within bounds: "graceDays must be a whole number from 0 to 365". */
export const integer = numeric(true);
/** A finite number within bounds. */
export const number = numeric(false);

export const boolean = (): Schema<boolean> => (value, field) =>
  typeof value === 'boolean' ? value : required(value, field, 'must be true or false');

/** Absent (undefined) is fine; anything else must pass `schema`. */
export const optional =
  <T>(schema: Schema<T>): Schema<T | undefined> =>
  (value, field) =>
    value === undefined ? undefined : schema(value, field);

/** `schema`, then `check` on its result; `rule` completes "<field> ..." when it fails. */
export const refine =
  <T>(schema: Schema<T>, check: (value: T, field: string) => boolean, rule: string): Schema<T> =>
  (value, field) => {
    const result = schema(value, field);
    if (!check(result, field)) fail(field, rule);
    return result;
  };

type Shape = Record<string, Schema<unknown>>;
type Flat<T> = { [K in keyof T]: T[K] } & {};
/** Fields whose schema may give undefined are optional properties. */
export type ObjectOf<S extends Shape> = Flat<
  { [K in keyof S as undefined extends Infer<S[K]> ? never : K]: Infer<S[K]> } & {
    [K in keyof S as undefined extends Infer<S[K]> ? K : never]?: Infer<S[K]>;
  }
>;

/**
 * A JSON object with the fields of `shape` (an absent optional field stays absent). Other fields
 * are dropped, or with `strict` refused, before any field is checked: a misspelt field is named
 * as such rather than as the missing one it was meant to be.
 */
export const object =
  <S extends Shape>(shape: S, { strict = false } = {}): Schema<ObjectOf<S>> =>
  (value, field) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, 'must be a JSON object');
    const at = (key: string) => (field ? `${field}.${key}` : key);
    // Own fields only: "constructor" or "__proto__" in a body is an unknown field, not a known one.
    if (strict) {
      const unknown = Object.keys(value).find((key) => !Object.hasOwn(shape, key));
      if (unknown !== undefined) throw new ValidationError(at(unknown), `unknown field "${at(unknown)}"`);
    }
    const result: Record<string, unknown> = {};
    for (const key of Object.keys(shape)) {
      const parsed = (shape[key] as Schema<unknown>)(
        Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined,
        at(key),
      );
      if (parsed !== undefined) result[key] = parsed;
    }
    return result as ObjectOf<S>;
  };

/** Whether `day` (YYYY-MM-DD) is a day of the calendar (no February 30). */
const realDay = (day: string) => {
  const date = new Date(`${day}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(day);
};

/** A calendar day, YYYY-MM-DD. */
export const isoDate = (): Schema<string> => {
  const rule = 'must be a date YYYY-MM-DD';
  return refine(text({ pattern: /^\d{4}-\d\d-\d\d$/, patternMessage: rule }), realDay, rule);
};

/**
 * An RFC 3339 date and time with seconds and an offset (`Z` or `+02:00`), as EventBridge and
 * billing systems write them; fractions of a second are allowed.
 */
export const isoDateTime = (): Schema<string> => {
  const rule = 'must be a date and time such as 2026-01-31T09:30:00Z';
  return refine(
    text({ pattern: /^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/, patternMessage: rule }),
    (value) => realDay(value.slice(0, 10)),
    rule,
  );
};
