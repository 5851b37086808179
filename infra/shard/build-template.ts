// The tier- and function-dependent sections of infra/shard/template.yml, generated from the files
// the home stack is built from, so that a shard has no tier list or role list of its own:
//   infra/tiers.json (through infra/serverless/source.js): the usage plans, their ARNs in the
//     role's policy, and the tier -> plan id output;
//   infra/serverless/roles.js: the home function roles that may assume the shard role (those
//     granted any API Gateway call).
// The rest of the template is written by hand. Each generated section sits between a marker line
// `# generated: <section> [args]` and `# end generated`, at the marker's indentation.
//
//   npx tsx infra/shard/build-template.ts           rewrites template.yml
//   npx tsx infra/shard/build-template.ts --check   exit 1 if template.yml is not what it generates
import { readFile, writeFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';

export const TEMPLATE_FILE = fileURLToPath(new URL('template.yml', import.meta.url));

/** A tier of infra/tiers.json. */
export interface TierDefinition {
  description?: string;
  throttle?: { rateLimit: number; burstLimit: number };
  quota?: { limit: number; period: string; offset?: number };
}

/** An IAM statement as the home stack's builders return it (infra/serverless/statements.js). */
export interface PolicyStatement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** What the generated sections are made of. */
export interface ShardSources {
  /** infra/tiers.json's tiers, in the file's order. */
  tiers: Record<string, TierDefinition>;
  /** tier -> the logical id of its plan: the home stack's ids, so policies read alike in both. */
  planIds: Record<string, string>;
  /** Every home function role (logical id) -> its statements, built for the stage PROBE_STAGE. */
  homeRoles: Record<string, PolicyStatement[]>;
}

/** The stage the home statements are built for when read here; its value in a condition is the stage. */
export const PROBE_STAGE = 'probe-stage';

export class ShardTemplateError extends Error {
  override name = 'ShardTemplateError';
}

interface SourceModule {
  readTiers(): Record<string, TierDefinition>;
  usagePlanLogicalIds(tiers: Record<string, TierDefinition>): Record<string, string>;
}

interface RolesModule {
  ROLES: Record<string, ((context: Record<string, unknown>) => PolicyStatement)[]>;
  roleLogicalId(functionName: string): string;
}

/**
 * Reads the tiers and the home roles through the deploy's own modules (plain JavaScript that
 * osls loads, hence imported by URL: they have no type declarations).
 */
export async function readSources(): Promise<ShardSources> {
  const source = (await import(new URL('../serverless/source.js', import.meta.url).href)) as SourceModule;
  const roles = (await import(new URL('../serverless/roles.js', import.meta.url).href)) as RolesModule;
  const tiers = source.readTiers();
  const homeRoles: Record<string, PolicyStatement[]> = {};
  for (const [functionName, builders] of Object.entries(roles.ROLES)) {
    // The context roles.js resolves from serverless.yml; only the stage matters to the key grants.
    const context = {
      service: 'keyplan',
      stage: PROBE_STAGE,
      functionName,
      sender: 'keys@example.com',
      senderDomain: 'example.com',
      configurationSet: '',
      eventBus: 'default',
    };
    homeRoles[roles.roleLogicalId(functionName)] = builders.map((build) => build(context));
  }
  return { tiers, planIds: source.usagePlanLogicalIds(tiers), homeRoles };
}

const actionsOf = (statement: PolicyStatement) =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

/** The home roles granted any API Gateway call: the ones that act in a shard. */
export function homeRolesCallingApiGateway(sources: ShardSources): string[] {
  return Object.entries(sources.homeRoles)
    .filter(([, statements]) => statements.some((s) => actionsOf(s).some((action) => action.startsWith('apigateway:'))))
    .map(([roleId]) => roleId);
}

/** As infra/serverless/usage-plans.js: {rateLimit: 2} becomes {RateLimit: 2}. */
const pascal = (object: object) =>
  Object.fromEntries(Object.entries(object).map(([key, value]) => [key.charAt(0).toUpperCase() + key.slice(1), value]));

const sub = (text: string) => ({ 'Fn::Sub': text });

function usagePlans(sources: ShardSources): object {
  return Object.fromEntries(
    Object.entries(sources.tiers).map(([tier, definition]) => [
      sources.planIds[tier],
      {
        Type: 'AWS::ApiGateway::UsagePlan',
        Properties: {
          UsagePlanName: sub(`keyplan-\${Stage}-${tier}`),
          ...(definition.description ? { Description: definition.description } : {}),
          ...(definition.throttle ? { Throttle: pascal(definition.throttle) } : {}),
          ...(definition.quota ? { Quota: pascal(definition.quota) } : {}),
          ApiStages: [{ ApiId: { Ref: 'ApiId' }, Stage: { Ref: 'ApiStageName' } }],
          Tags: [
            { Key: 'keyplan:managed', Value: 'true' },
            { Key: 'keyplan:stage', Value: { Ref: 'Stage' } },
            { Key: 'keyplan:tier', Value: tier },
          ],
        },
      },
    ]),
  );
}

/**
 * The home function roles by the names CloudFormation gives them in the stack keyplan-<Stage>:
 * <stack>-<LogicalId>-<random suffix>.
 */
const homeRoles = (sources: ShardSources) =>
  homeRolesCallingApiGateway(sources).map((roleId) =>
    sub(`arn:\${AWS::Partition}:iam::\${HomeAccountId}:role/keyplan-\${Stage}-${roleId}-*`),
  );

/** `{plan}/keys` -> that path under each of the template's plans, pattern by pattern. */
function planArns(sources: ShardSources, patterns: string[]): object[] {
  if (patterns.length === 0) throw new ShardTemplateError('plan-arns needs at least one pattern, such as {plan}/keys');
  return patterns.flatMap((pattern) => {
    if (!/^\{plan\}(\/[a-z*]+)*$/.test(pattern)) {
      throw new ShardTemplateError(`plan-arns pattern "${pattern}" is not {plan} followed by a path such as /keys/*`);
    }
    return Object.values(sources.planIds).map((id) =>
      sub(`arn:\${AWS::Partition}:apigateway:\${AWS::Region}::/usageplans/${pattern.replace('{plan}', `\${${id}}`)}`),
    );
  });
}

/** tier -> plan id, as the JSON keyplan's shard list takes. */
const tierMap = (sources: ShardSources) =>
  sub(JSON.stringify(Object.fromEntries(Object.entries(sources.planIds).map(([tier, id]) => [tier, `\${${id}}`]))));

function section(name: string, args: string[], sources: ShardSources): unknown {
  switch (name) {
    case 'usage-plans':
      return usagePlans(sources);
    case 'home-roles':
      return homeRoles(sources);
    case 'plan-arns':
      return planArns(sources, args);
    case 'tier-map':
      return tierMap(sources);
    default:
      throw new ShardTemplateError(`unknown generated section "${name}"`);
  }
}

const BEGIN = /^(?<indent> *)# generated: (?<name>\S+)(?<args>.*)$/;
const END = /^ *# end generated$/;

/**
 * The template with every generated section rendered anew from `sources`; the hand-written lines
 * (the markers included) stay exactly as they are.
 *
 * @throws ShardTemplateError for an unknown section, a marker without its end, or an end without
 *   its marker
 */
export function renderTemplate(text: string, sources: ShardSources): string {
  const lines = text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] ?? '';
    if (END.test(line)) {
      throw new ShardTemplateError(`line ${i + 1}: "# end generated" without a "# generated:" marker`);
    }
    const begin = BEGIN.exec(line);
    out.push(line);
    if (!begin?.groups) continue;
    const { indent = '', name = '', args = '' } = begin.groups;
    const end = lines.findIndex((candidate, j) => j > i && (END.test(candidate) || BEGIN.test(candidate)));
    if (end < 0 || !END.test(lines[end] ?? '')) {
      throw new ShardTemplateError(
        `line ${i + 1}: the section "${name}" has no "# end generated" before the next marker`,
      );
    }
    const rendered = stringify(section(name, args.trim().split(/\s+/).filter(Boolean), sources), { lineWidth: 0 });
    out.push(...rendered.trimEnd().split('\n').map((renderedLine) => `${indent}${renderedLine}`), lines[end] ?? '');
    i = end;
  }
  return out.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const check = argv.includes('--check');
  const unknown = argv.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    console.error(`unknown argument ${unknown.join(' ')}; usage: build-template.ts [--check]`);
    return 2;
  }
  const name = relative(process.cwd(), TEMPLATE_FILE);
  const text = await readFile(TEMPLATE_FILE, 'utf8');
  const rendered = renderTemplate(text, await readSources());
  if (rendered === text) {
    console.log(`${name} is up to date`);
    return 0;
  }
  if (check) {
    console.error(`${name} is stale: run npx tsx infra/shard/build-template.ts`);
    return 1;
  }
  await writeFile(TEMPLATE_FILE, rendered);
  console.log(`${name} written`);
  return 0;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
