import { readFileSync } from 'node:fs';

/**
 * A JSON Schema (draft 2020-12) checker for the subset docs/events/*.schema.json use, so the tests
 * need no validator dependency: `type`, `properties`, `required`, `additionalProperties: false`,
 * `items`, `enum`, `minLength`, `minimum`, `pattern` and `format` (`date-time`, `uuid`). A schema
 * that uses any other keyword is refused rather than half checked.
 */
export interface JsonSchema {
  $schema?: string;
  $id?: string;
  title?: string;
  description?: string;
  examples?: unknown[];
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: false;
  items?: JsonSchema;
  enum?: unknown[];
  minLength?: number;
  minimum?: number;
  pattern?: string;
  format?: 'date-time' | 'uuid';
}

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', 'examples', '$comment']);
const CHECKED = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'minLength',
  'minimum',
  'pattern',
  'format',
]);

/** RFC 3339 date-time, as `format: date-time` means it (a time zone is required). */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The schema's own mistakes against the subset: unknown keywords, `additionalProperties` other than false. */
export function unsupportedKeywords(schema: JsonSchema, path = '#'): string[] {
  const problems: string[] = [];
  for (const [keyword, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword)) continue;
    if (!CHECKED.has(keyword)) problems.push(`${path}: keyword "${keyword}" is not supported by the checker`);
    if (keyword === 'additionalProperties' && value !== false) problems.push(`${path}: additionalProperties must be false`);
    if (keyword === 'format' && value !== 'date-time' && value !== 'uuid') problems.push(`${path}: format "${String(value)}" is not supported`);
  }
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    problems.push(...unsupportedKeywords(property, `${path}/properties/${name}`));
  }
  if (schema.items) problems.push(...unsupportedKeywords(schema.items, `${path}/items`));
  return problems;
}

/** Where `value` breaks `schema`, one line each (JSON pointer and what is wrong); none: it is valid. */
export function validateAgainst(schema: JsonSchema, value: unknown, path = ''): string[] {
  const unsupported = unsupportedKeywords(schema);
  if (unsupported.length > 0) return unsupported;
  return check(schema, value, path);
}

function check(schema: JsonSchema, value: unknown, path: string): string[] {
  const at = path || '/';
  if (schema.enum && !schema.enum.some((allowed) => allowed === value)) {
    return [`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`];
  }
  switch (schema.type) {
    case undefined:
      return [];
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at}: not an object`];
      const record = value as Record<string, unknown>;
      const problems = (schema.required ?? []).filter((name) => !Object.hasOwn(record, name)).map((name) => `${at}: "${name}" is required`);
      for (const [name, field] of Object.entries(record)) {
        const property = schema.properties?.[name];
        if (property) problems.push(...check(property, field, `${path}/${name}`));
        else if (schema.additionalProperties === false) problems.push(`${at}: "${name}" is not allowed`);
      }
      return problems;
    }
    case 'array':
      if (!Array.isArray(value)) return [`${at}: not an array`];
      return schema.items ? value.flatMap((item, index) => check(schema.items!, item, `${path}/${index}`)) : [];
    case 'string': {
      if (typeof value !== 'string') return [`${at}: not a string`];
      const problems: string[] = [];
      if (schema.minLength !== undefined && value.length < schema.minLength) problems.push(`${at}: shorter than ${schema.minLength}`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) problems.push(`${at}: does not match ${schema.pattern}`);
      if (schema.format === 'date-time' && !(DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)))) problems.push(`${at}: not a date-time`);
      if (schema.format === 'uuid' && !UUID.test(value)) problems.push(`${at}: not a uuid`);
      return problems;
    }
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return [`${at}: not a number`];
      if (schema.type === 'integer' && !Number.isInteger(value)) return [`${at}: not an integer`];
      return schema.minimum !== undefined && value < schema.minimum ? [`${at}: below ${schema.minimum}`] : [];
    }
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${at}: not a boolean`];
  }
}

/** docs/events/<type>.schema.json: the schema of the EventBridge `detail` of events of that detail-type. */
export const eventSchemaUrl = (type: string) => new URL(`../../docs/events/${type}.schema.json`, import.meta.url);

export function loadEventSchema(type: string): JsonSchema {
  return JSON.parse(readFileSync(eventSchemaUrl(type), 'utf8')) as JsonSchema;
}
