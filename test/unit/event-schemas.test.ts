import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { LIFECYCLE_EVENT_TYPES, type LifecycleEventType } from '../../shared/core/events';
import { type JsonSchema, loadEventSchema, unsupportedKeywords, validateAgainst } from '../support/json-schema';

// docs/events/<DetailType>.schema.json describe EventBridge's `detail` of each lifecycle event as
// the publisher sends it: the envelope (eventId, customerId, sequence, time, correlationId) and the
// event's own fields. Here: one schema per type, each well formed and strict, its example valid,
// and the fields the use cases write (every `event('Type', {...})` in shared/) the schema's. The
// events the emulator run writes are validated against them in
// test/integration/lifecycle-events.test.ts.

const ENVELOPE = ['eventId', 'customerId', 'sequence', 'time', 'correlationId'];
const root = fileURLToPath(new URL('../../', import.meta.url));
const schemaFiles = readdirSync(`${root}docs/events`).filter((name) => name.endsWith('.schema.json'));
const schemas = new Map(LIFECYCLE_EVENT_TYPES.map((type) => [type, loadEventSchema(type)] as const));
const schemaOf = (type: LifecycleEventType): JsonSchema => schemas.get(type)!;

describe('the lifecycle event schemas', () => {
  it('are one per detail type, and none for a type that does not exist', () => {
    expect(schemaFiles.sort()).toEqual(LIFECYCLE_EVENT_TYPES.map((type) => `${type}.schema.json`).sort());
  });

  it.each(LIFECYCLE_EVENT_TYPES)('%s: draft 2020-12, strict, every field described, only what the checker understands', (type) => {
    const schema = schemaOf(type);

    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toBe(`urn:keyplan:event:${type}`);
    expect(schema.title).toBe(type);
    expect(schema.description?.length).toBeGreaterThan(40);
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(unsupportedKeywords(schema)).toEqual([]);
    expect(schema.required?.slice(0, ENVELOPE.length)).toEqual(ENVELOPE);
    for (const field of schema.required ?? []) expect(Object.keys(schema.properties ?? {})).toContain(field);
    for (const [field, property] of Object.entries(schema.properties ?? {})) {
      expect({ field, type: property.type, description: property.description }).toEqual({
        field,
        type: expect.any(String),
        description: expect.stringMatching(/\S/),
      });
    }
    // A key value is never a field: ids and fingerprints only.
    expect(Object.keys(schema.properties ?? {}).filter((field) => /value|secret/i.test(field))).toEqual([]);
  });

  it('share one envelope, word for word', () => {
    const envelopeOf = (schema: JsonSchema) => Object.fromEntries(ENVELOPE.map((field) => [field, schema.properties?.[field]]));
    const first = envelopeOf(schemaOf('KeyProvisioned'));
    for (const type of LIFECYCLE_EVENT_TYPES) expect({ type, envelope: envelopeOf(schemaOf(type)) }).toEqual({ type, envelope: first });
  });

  it.each(LIFECYCLE_EVENT_TYPES)('%s: its example is valid', (type) => {
    const schema = schemaOf(type);

    expect(schema.examples?.length).toBeGreaterThan(0);
    for (const example of schema.examples ?? []) expect(validateAgainst(schema, example)).toEqual([]);
  });

  it('are linked from docs/events.md, each with its detail type', () => {
    const page = readFileSync(`${root}docs/events.md`, 'utf8');
    for (const type of LIFECYCLE_EVENT_TYPES) expect(page).toContain(`[\`${type}\`](events/${type}.schema.json)`);
  });
});

describe('the schema checker', () => {
  // The checker is the test's own (no validator dependency): each rule is shown to refuse.
  const schema = schemaOf('KeyRotated');
  const valid = schema.examples?.[0] as Record<string, unknown>;
  const without = (field: string) => Object.fromEntries(Object.entries(valid).filter(([name]) => name !== field));

  it.each([
    ['a required field missing', without('newKeyId'), '/: "newKeyId" is required'],
    ['a field the schema does not know', { ...valid, keyValue: 'kp_home_x' }, '/: "keyValue" is not allowed'],
    ['a string that is a number', { ...valid, oldKeyId: 7 }, '/oldKeyId: not a string'],
    ['an integer that is not one', { ...valid, sequence: 1.5 }, '/sequence: not an integer'],
    ['a number below the minimum', { ...valid, sequence: 0 }, '/sequence: below 1'],
    ['a time that is no date-time', { ...valid, time: '2026-11-30 12:00' }, '/time: not a date-time'],
    ['an id that is no uuid', { ...valid, eventId: 'event-1' }, '/eventId: not a uuid'],
    ['a fingerprint of another shape', { ...valid, fingerprint: 'kp_home_abc' }, '/fingerprint: does not match ^[0-9a-f]{8}$'],
    ['an empty id', { ...valid, tier: '' }, '/tier: shorter than 1'],
    ['something that is not an object', ['KeyRotated'], '/: not an object'],
  ])('refuses %s', (_case, value, problem) => {
    expect(validateAgainst(schema, value)).toContain(problem);
  });

  it('refuses a value outside an enum, and an array item of the wrong type', () => {
    const emailed = schemaOf('KeyEmailed');
    const revoked = schemaOf('CustomerRevoked');

    expect(validateAgainst(emailed, { ...emailed.examples?.[0] as object, reason: 'because' })).toEqual([
      '/reason: "because" is not one of ["registration","rotation","owed"]',
    ]);
    expect(validateAgainst(revoked, { ...revoked.examples?.[0] as object, keyIds: ['key-1', 2] })).toEqual(['/keyIds/1: not a string']);
  });

  it('refuses a schema that uses a keyword it does not check', () => {
    expect(validateAgainst({ type: 'string', maxLength: 3 } as JsonSchema, 'abcd')).toEqual([
      '#: keyword "maxLength" is not supported by the checker',
    ]);
  });
});

/** Every `event('Type', { ... })` of shared/: the detail fields each use case writes. */
function eventCallsInShared(): { file: string; type: string; fields: string[] }[] {
  const calls: { file: string; type: string; fields: string[] }[] = [];
  const files = readdirSync(`${root}shared`, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
  for (const file of files) {
    const text = readFileSync(`${root}shared/${file}`, 'utf8');
    if (!text.includes('event(')) continue;
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'event') {
        const [type, detail] = node.arguments;
        if (type && ts.isStringLiteral(type)) {
          // A detail that is not spelled out cannot be checked: the use cases write literals.
          if (!detail || !ts.isObjectLiteralExpression(detail)) throw new Error(`${file}: event('${type.text}') has no literal detail`);
          const fields = detail.properties.map((property) => {
            if ((ts.isPropertyAssignment(property) || ts.isShorthandPropertyAssignment(property)) && ts.isIdentifier(property.name)) {
              return property.name.text;
            }
            throw new Error(`${file}: event('${type.text}') has a detail field that is not a plain name`);
          });
          calls.push({ file, type: type.text, fields });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return calls;
}

describe('the use cases and the schemas', () => {
  const calls = eventCallsInShared();

  it('write every type, and no type without a schema', () => {
    expect([...new Set(calls.map((call) => call.type))].sort()).toEqual([...LIFECYCLE_EVENT_TYPES].sort());
    expect(existsSync(`${root}docs/events`)).toBe(true);
  });

  it.each(LIFECYCLE_EVENT_TYPES)('%s: every field written is in the schema, every required one is written', (type) => {
    const schema = schemaOf(type);
    const own = Object.keys(schema.properties ?? {}).filter((field) => !ENVELOPE.includes(field));
    const required = (schema.required ?? []).filter((field) => !ENVELOPE.includes(field));

    for (const call of calls.filter((candidate) => candidate.type === type)) {
      // Named with the file that writes them, so a failure says where.
      expect({ file: call.file, unknown: call.fields.filter((field) => !own.includes(field)) }).toEqual({ file: call.file, unknown: [] });
      expect({ file: call.file, missing: required.filter((field) => !call.fields.includes(field)) }).toEqual({ file: call.file, missing: [] });
    }
  });
});
