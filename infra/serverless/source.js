// The deploy reads the same files as the local bootstrap (infra/tiers.json, infra/table.json), so
// a tier or an index added there reaches both without a second copy to keep in step.
//
// These modules are ES modules that osls loads with require(): Node >= 20.19 / 22.12 loads ESM
// that way. Every ${file(...)} reference to them names an export (":resources"), because
// require() returns the module namespace, not a function.
import { readFileSync } from 'node:fs';

function readJson(name) {
  return JSON.parse(readFileSync(new URL(`../${name}`, import.meta.url), 'utf8'));
}

/** @returns {Record<string, {description?: string, throttle?: object, quota?: object}>} */
export function readTiers() {
  const { tiers } = readJson('tiers.json');
  if (!tiers || Object.keys(tiers).length === 0) {
    throw new Error('infra/tiers.json names no tier');
  }
  return tiers;
}

export function readTable() {
  return readJson('table.json');
}

/**
 * CloudFormation logical ids are alphanumeric, tier names may hold hyphens: "free-trial" becomes
 * UsagePlanFreeTrial. Two tiers mapping to one id would silently merge two plans, hence the check.
 */
export function usagePlanLogicalIds(tiers) {
  const ids = {};
  const seen = new Map();
  for (const tier of Object.keys(tiers)) {
    const id =
      'UsagePlan' +
      tier
        .split('-')
        .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
        .join('');
    if (seen.has(id)) {
      throw new Error(`tiers "${seen.get(id)}" and "${tier}" map to one logical id ${id}`);
    }
    seen.set(id, tier);
    ids[tier] = id;
  }
  return ids;
}

/** Params arrive as YAML booleans from serverless.yml but as strings from --param. */
export function toBoolean(value, name) {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new Error(`param ${name} must be true or false, got ${JSON.stringify(value)}`);
}

export async function resolveParam(resolveVariable, name) {
  const value = await resolveVariable(`param:${name}`);
  return value == null ? '' : value;
}
