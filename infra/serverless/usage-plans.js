import { readTiers, resolveParam, usagePlanLogicalIds } from './source.js';

const pascal = (object) =>
  Object.fromEntries(
    Object.entries(object).map(([key, value]) => [key.charAt(0).toUpperCase() + key.slice(1), value]),
  );

/** One AWS::ApiGateway::UsagePlan per tier of infra/tiers.json. */
export async function resources({ resolveVariable }) {
  const tiers = readTiers();
  const ids = usagePlanLogicalIds(tiers);
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const apiId = await resolveParam(resolveVariable, 'apiId');
  const apiStage = await resolveParam(resolveVariable, 'apiStage');
  // Half a stage reference would deploy plans that never meter anything: refuse it early.
  if (Boolean(apiId) !== Boolean(apiStage)) {
    throw new Error('params apiId and apiStage must be set together (or both left empty)');
  }

  const Resources = {};
  const Outputs = {};
  for (const [tier, definition] of Object.entries(tiers)) {
    const id = ids[tier];
    Resources[id] = {
      Type: 'AWS::ApiGateway::UsagePlan',
      Properties: {
        UsagePlanName: `${service}-${stage}-${tier}`,
        ...(definition.description ? { Description: definition.description } : {}),
        ...(definition.throttle ? { Throttle: pascal(definition.throttle) } : {}),
        ...(definition.quota ? { Quota: pascal(definition.quota) } : {}),
        ApiStages: {
          'Fn::If': ['HasApiStage', [{ ApiId: apiId, Stage: apiStage }], { Ref: 'AWS::NoValue' }],
        },
        Tags: [
          { Key: 'keyplan:managed', Value: 'true' },
          { Key: 'keyplan:tier', Value: tier },
        ],
      },
    };
    Outputs[`${id}Id`] = { Value: { Ref: id } };
  }
  return { Resources, Outputs };
}

/** TIER_MAP for the functions: {"tier":"<usage plan id>"}, filled in by CloudFormation. */
export async function tierMap() {
  const ids = usagePlanLogicalIds(readTiers());
  const template = Object.fromEntries(Object.entries(ids).map(([tier, id]) => [tier, `\${${id}}`]));
  return { 'Fn::Sub': JSON.stringify(template) };
}
