import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  homeRolesCallingApiGateway,
  type PolicyStatement,
  PROBE_STAGE,
  readSources,
  renderTemplate,
  type ShardSources,
  ShardTemplateError,
  TEMPLATE_FILE,
} from '../../infra/shard/build-template';

/**
 * The shard template (infra/shard/template.yml): generated where it depends on the tiers and the
 * home roles, and as narrow as the home roles (infra/serverless/statements.js). cfn-lint and
 * checkov read it in test/integration/shard-template.test.ts.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}
interface Template {
  Parameters: Record<string, Record<string, unknown>>;
  Resources: Record<string, Resource>;
  Outputs: Record<string, { Value: unknown }>;
}
interface Tier {
  throttle: { rateLimit: number; burstLimit: number };
  quota: { limit: number; period: string };
}
/** One action on one resource, with its statement's condition. */
interface Grant {
  sid: string | undefined;
  action: string;
  resource: string;
  condition: Record<string, Record<string, unknown>> | undefined;
}

const MUTATING = new Set(['apigateway:POST', 'apigateway:PUT', 'apigateway:PATCH', 'apigateway:DELETE']);
const STAGE_TAG = 'keyplan:stage';
/** CloudFormation's random suffix of a generated name, e.g. -1U44TLUZ7OR55. */
const GENERATED_SUFFIX_LENGTH = 13;
const IAM_ROLE_NAME_MAX = 64;

const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** A plain ARN or an Fn::Sub pattern as text; any other intrinsic as JSON. */
function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  const sub = (value as { 'Fn::Sub'?: unknown })['Fn::Sub'];
  return typeof sub === 'string' ? sub : JSON.stringify(value);
}

/** The statements of a role's inline policies. */
function statementsOf(roleResource: Resource): PolicyStatement[] {
  const policies = roleResource.Properties.Policies as { PolicyDocument: { Statement: PolicyStatement[] } }[];
  return policies.flatMap((policy) => policy.PolicyDocument.Statement);
}

function grantsOf(statements: PolicyStatement[]): Grant[] {
  return statements.flatMap((statement) =>
    asArray(statement.Action).flatMap((action) =>
      asArray(statement.Resource).map((resource) => ({
        sid: statement.Sid,
        action,
        resource: textOf(resource),
        condition: statement.Condition,
      })),
    ),
  );
}

const templateText = readFileSync(TEMPLATE_FILE, 'utf8');
const template = parse(templateText) as Template;
const { tiers } = JSON.parse(readFileSync(join(root, 'infra/tiers.json'), 'utf8')) as { tiers: Record<string, Tier> };

const role = template.Resources.ShardRole as Resource;
const trust = (role.Properties.AssumeRolePolicyDocument as { Statement: Record<string, unknown>[] }).Statement;
const statements = statementsOf(role);
const grants = grantsOf(statements);

const plans = Object.entries(template.Resources).filter(
  ([, resource]) => resource.Type === 'AWS::ApiGateway::UsagePlan',
);
const planIds = plans.map(([id]) => id);
/** A plan's keyplan:tier tag. */
const tierOf = (plan: Resource) =>
  (plan.Properties.Tags as { Key: string; Value: unknown }[]).find((tag) => tag.Key === 'keyplan:tier')?.Value;

/** The tag keys keyplan's code puts on the keys it creates: `'keyplan:…':` keys of object literals in shared/. */
function tagKeysInCode(): Set<string> {
  const keys = new Set<string>();
  const files = readdirSync(join(root, 'shared'), { recursive: true, encoding: 'utf8' }).filter((file) =>
    file.endsWith('.ts'),
  );
  for (const file of files) {
    const text = readFileSync(join(root, 'shared', file), 'utf8');
    for (const match of text.matchAll(/^\s*'(keyplan:[a-z-]+)':/gm)) keys.add(String(match[1]));
  }
  return keys;
}

/** Sources with one more tier, as if it had been added to infra/tiers.json. */
function withTier(sources: ShardSources, tier: string, planId: string): ShardSources {
  return {
    ...sources,
    tiers: {
      ...sources.tiers,
      [tier]: { throttle: { rateLimit: 1, burstLimit: 1 }, quota: { limit: 10, period: 'WEEK' } },
    },
    planIds: { ...sources.planIds, [tier]: planId },
  };
}

describe('shard template (infra/shard/template.yml)', () => {
  let sources: ShardSources;

  beforeAll(async () => {
    sources = await readSources();
  });

  describe('generation (infra/shard/build-template.ts)', () => {
    it('the committed template is what build-template.ts generates from tiers.json and roles.js', () => {
      // Stale? `npx tsx infra/shard/build-template.ts` rewrites it.
      expect(renderTemplate(templateText, sources)).toBe(templateText);
    });

    it('puts a tier added to tiers.json into the plans, every plan grant and the output', () => {
      const text = renderTemplate(templateText, withTier(sources, 'free-trial', 'UsagePlanFreeTrial'));
      const rendered = parse(text) as Template;

      expect(rendered.Resources.UsagePlanFreeTrial?.Properties).toMatchObject({
        UsagePlanName: { 'Fn::Sub': 'keyplan-${Stage}-free-trial' },
        Throttle: { RateLimit: 1, BurstLimit: 1 },
        Quota: { Limit: 10, Period: 'WEEK' },
      });
      const renderedGrants = grantsOf(statementsOf(rendered.Resources.ShardRole as Resource));
      const grantsOnPlan = (id: string) =>
        renderedGrants
          .filter((grant) => grant.resource.includes(`/usageplans/\${${id}}`))
          .map((grant) => `${grant.action} ${grant.resource.replace(id, '<plan>')}`);
      // The new plan gets exactly the grants every existing plan has.
      expect(grantsOnPlan('UsagePlanFreeTrial')).toEqual(grantsOnPlan('UsagePlanFree'));
      expect(textOf(rendered.Outputs.UsagePlans?.Value)).toContain('"free-trial":"${UsagePlanFreeTrial}"');
    });

    it('trusts only the home roles that are granted an API Gateway call', () => {
      const logsOnly: PolicyStatement = { Effect: 'Allow', Action: 'logs:PutLogEvents', Resource: '*' };
      const changed: ShardSources = {
        ...sources,
        homeRoles: {
          ...sources.homeRoles,
          OutboxRelayRole: [logsOnly],
          NewApiRole: sources.homeRoles.RegisterRole ?? [],
        },
      };

      const trusted = homeRolesCallingApiGateway(changed);

      expect(trusted).toContain('NewApiRole');
      expect(trusted).not.toContain('OutboxRelayRole');
      expect(renderTemplate(templateText, changed)).toContain('role/keyplan-${Stage}-NewApiRole-*');
    });

    it.each([
      ['an unknown section', '# generated: everything\n# end generated\n', /unknown generated section "everything"/],
      ['a marker without its end', '  # generated: tier-map\n  Fn::Sub: x\n', /has no "# end generated"/],
      [
        'a marker running into the next',
        '# generated: tier-map\n# generated: home-roles\n# end generated\n',
        /has no "# end generated"/,
      ],
      ['an end without a marker', 'a: 1\n  # end generated\n', /without a "# generated:" marker/],
      [
        'a plan pattern that is no path under a plan',
        '# generated: plan-arns /keys\n# end generated\n',
        /is not \{plan\} followed by a path/,
      ],
      ['plan-arns without a pattern', '# generated: plan-arns\n# end generated\n', /needs at least one pattern/],
    ])('refuses %s', (_case, text, message) => {
      expect(() => renderTemplate(text, sources)).toThrow(ShardTemplateError);
      expect(() => renderTemplate(text, sources)).toThrow(message);
    });
  });

  describe('usage plans', () => {
    it('has one plan per tier of tiers.json, with its limits, on the seller API stage', () => {
      const byTier = Object.fromEntries(plans.map(([, plan]) => [tierOf(plan), plan]));
      expect(Object.keys(byTier).sort()).toEqual(Object.keys(tiers).sort());
      expect(plans).toHaveLength(Object.keys(tiers).length);

      for (const [tier, { throttle, quota }] of Object.entries(tiers)) {
        expect(byTier[tier]?.Properties).toMatchObject({
          UsagePlanName: { 'Fn::Sub': `keyplan-\${Stage}-${tier}` },
          Throttle: { RateLimit: throttle.rateLimit, BurstLimit: throttle.burstLimit },
          Quota: { Limit: quota.limit, Period: quota.period },
          ApiStages: [{ ApiId: { Ref: 'ApiId' }, Stage: { Ref: 'ApiStageName' } }],
        });
        expect(byTier[tier]?.Properties.Tags).toContainEqual({ Key: STAGE_TAG, Value: { Ref: 'Stage' } });
      }
    });

    it('outputs tier -> usage plan id as JSON, and the role ARN', () => {
      const map = JSON.parse(textOf(template.Outputs.UsagePlans?.Value)) as Record<string, string>;
      const planOf = Object.fromEntries(plans.map(([id, plan]) => [tierOf(plan), id]));

      expect(Object.keys(map).sort()).toEqual(Object.keys(tiers).sort());
      for (const [tier, value] of Object.entries(map)) expect(value).toBe(`\${${planOf[tier]}}`);
      expect(template.Outputs.RoleArn?.Value).toEqual({ 'Fn::GetAtt': ['ShardRole', 'Arn'] });
    });
  });

  describe('the role trust', () => {
    it('requires the external id and admits only the keyplan-<Stage> function roles of the home account', () => {
      expect(trust).toHaveLength(1);
      const [statement] = trust;
      expect(statement).toEqual({
        Sid: expect.any(String) as unknown,
        Effect: 'Allow',
        Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${HomeAccountId}:root' } },
        Action: 'sts:AssumeRole',
        Condition: {
          StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } },
          ArnLike: { 'aws:PrincipalArn': expect.any(Array) as unknown },
        },
      });
      const { ArnLike } = statement?.Condition as { ArnLike: Record<string, unknown[]> };
      const principals = (ArnLike['aws:PrincipalArn'] ?? []).map(textOf);
      // Every function role of roles.js that calls API Gateway, by the name CloudFormation gives it.
      const homeRole = (id: string) => `arn:\${AWS::Partition}:iam::\${HomeAccountId}:role/keyplan-\${Stage}-${id}-*`;
      expect(principals).toEqual(homeRolesCallingApiGateway(sources).map(homeRole));
      expect(principals.length).toBeGreaterThan(0);
      for (const principal of principals) {
        expect(principal).toMatch(
          /^arn:\$\{AWS::Partition\}:iam::\$\{HomeAccountId\}:role\/keyplan-\$\{Stage\}-\w+Role-\*$/,
        );
      }
      expect(template.Parameters.ExternalId).toMatchObject({ NoEcho: true, MinLength: 16 });
      expect(template.Parameters.HomeAccountId).toMatchObject({ AllowedPattern: '^[0-9]{12}$' });
    });

    it('allows no Stage so long that CloudFormation would shorten a home role name past the trust', () => {
      const longest = Math.max(...homeRolesCallingApiGateway(sources).map((id) => id.length));
      const stage = 'x'.repeat(Number(template.Parameters.Stage?.MaxLength));
      // keyplan-<stage>-<LogicalId>-<suffix>: shortened by CloudFormation beyond 64 characters.
      expect(`keyplan-${stage}-`.length + longest + 1 + GENERATED_SUFFIX_LENGTH).toBeLessThanOrEqual(IAM_ROLE_NAME_MAX);
      expect(template.Parameters.Stage?.AllowedPattern).toBe('^[A-Za-z0-9-]+$');
    });
  });

  describe('the role policy', () => {
    it('allows API Gateway calls only, never apigateway:* nor a wildcard resource', () => {
      for (const statement of statements) {
        expect(Object.keys(statement).sort()).toEqual(
          ['Action', 'Effect', 'Resource', 'Sid', ...(statement.Condition ? ['Condition'] : [])].sort(),
        );
        expect(statement.Effect).toBe('Allow');
      }
      for (const grant of grants) {
        expect(grant.action).toMatch(/^apigateway:(GET|POST|PUT|PATCH|DELETE)$/);
        expect(grant.resource).toMatch(
          /^arn:\$\{AWS::Partition\}:apigateway:\$\{AWS::Region\}::\/(apikeys|tags|usageplans)\b/,
        );
      }
      const mutatingResources = grants.filter((grant) => MUTATING.has(grant.action)).map((grant) => grant.resource);
      expect(mutatingResources).not.toContain('*');
      for (const resource of mutatingResources) expect(resource).not.toMatch(/::\/?\*$/);
    });

    it('conditions every mutating key action, and the read of one key, on the stage tag', () => {
      const keyGrants = grants.filter(
        (grant) => grant.resource.includes('::/apikeys') || grant.resource.includes('::/tags/'),
      );
      const conditioned = keyGrants.filter(
        (grant) => MUTATING.has(grant.action) || grant.resource.endsWith('/apikeys/*'),
      );
      expect(conditioned.map((grant) => grant.sid).sort()).toEqual(
        ['CreateApiKey', 'TagApiKeyOnCreate', 'ReadOwnApiKey', 'UpdateOwnApiKey', 'DeleteOwnApiKey'].sort(),
      );
      for (const grant of conditioned) {
        // A key is created (and tagged on create) only with the tag; an existing one is touched
        // only if it has it.
        const creates = grant.action === 'apigateway:POST' || grant.action === 'apigateway:PUT';
        const key = creates ? 'aws:RequestTag' : 'aws:ResourceTag';
        expect(grant.condition?.StringEquals).toEqual({ [`${key}/${STAGE_TAG}`]: { Ref: 'Stage' } });
      }
      // The one unconditioned key grant: GetApiKeys, whose collection carries no tag to condition on.
      const unconditioned = keyGrants.filter((grant) => !conditioned.includes(grant));
      expect(unconditioned.map((grant) => `${grant.action} ${grant.resource}`)).toEqual([
        'apigateway:GET arn:${AWS::Partition}:apigateway:${AWS::Region}::/apikeys',
      ]);
    });

    it('allows on a new key only the tag keys the code puts on one', () => {
      const created = grants.filter((grant) => grant.sid === 'CreateApiKey' || grant.sid === 'TagApiKeyOnCreate');
      const code = tagKeysInCode();
      expect(code).toContain(STAGE_TAG);
      expect(created).toHaveLength(2);
      for (const grant of created) {
        const allowed = grant.condition?.['ForAllValues:StringEquals']?.['aws:TagKeys'] as string[];
        // A new tag in the code needs it here too, or CreateApiKey is refused in every shard.
        expect(new Set(allowed)).toEqual(code);
      }
    });

    it("limits usage plan calls to the template's own plans, and never changes a plan", () => {
      const planGrants = grants.filter((grant) => grant.resource.includes('::/usageplans'));
      // Each as "action path" with the plan written {plan}; anything not under one of the plans stays whole.
      const calls = planGrants.map((grant) => {
        const match = /::\/usageplans\/\$\{(\w+)\}(.*)$/.exec(grant.resource);
        const ownPlan = match !== null && planIds.includes(String(match[1]));
        return ownPlan ? `${grant.action} {plan}${match[2]}` : `${grant.action} ${grant.resource}`;
      });
      // Associate, remove, and the reads; no PATCH or DELETE on a plan itself (UpdateUsagePlan,
      // DeleteUsagePlan), and every call covers every plan of the template.
      const allowed = [
        'apigateway:POST {plan}/keys',
        'apigateway:DELETE {plan}/keys/*',
        'apigateway:GET {plan}',
        'apigateway:GET {plan}/keys',
        'apigateway:GET {plan}/keys/*',
        'apigateway:GET {plan}/usage',
      ];
      expect(calls.sort()).toEqual(allowed.flatMap((call) => planIds.map(() => call)).sort());
      for (const id of planIds) {
        const onPlan = planGrants.filter((grant) => grant.resource.includes(`/usageplans/\${${id}}`));
        expect(onPlan).toHaveLength(allowed.length);
      }
    });

    it('grants exactly the API Gateway calls the home roles grant, each with at least their condition', () => {
      const home = grantsOf(Object.values(sources.homeRoles).flat()).filter((grant) =>
        grant.action.startsWith('apigateway:'),
      );
      const pairs = (list: Grant[]) => [...new Set(list.map((grant) => `${grant.action} ${grant.resource}`))].sort();

      expect(pairs(grants)).toEqual(pairs(home));
      for (const homeGrant of home) {
        const shardGrant = grants.find((g) => g.action === homeGrant.action && g.resource === homeGrant.resource);
        // The home roles' stage is the template's Stage parameter here.
        const stage = JSON.stringify({ Ref: 'Stage' });
        const condition = JSON.parse(
          JSON.stringify(homeGrant.condition ?? {}).replaceAll(JSON.stringify(PROBE_STAGE), stage),
        ) as Record<string, unknown>;
        const grant = `${homeGrant.action} ${homeGrant.resource}`;
        expect({ grant, condition: shardGrant?.condition ?? {} }).toMatchObject({ grant, condition });
      }
    });
  });
});
