// The shard list of infra/shards.json for the deploy: the functions' SHARDS setting, and the shard
// roles the API Gateway functions may assume. An empty list is a deployment of one shard, exactly
// as before shards: no SHARDS setting, no sts:AssumeRole grant.
import { readFileSync } from 'node:fs';

const SHARD_ID = /^[a-z0-9]{1,12}$/;

/** @returns {Array<{id: string, region?: string, roleArn?: string, externalId?: string, baseUrl?: string, plans?: Record<string, string>}>} */
export function readShards() {
  const { shards = [] } = JSON.parse(readFileSync(new URL('../shards.json', import.meta.url), 'utf8'));
  if (!Array.isArray(shards)) throw new Error('infra/shards.json: "shards" must be a list');
  shards.forEach((shard, index) => {
    const where = `infra/shards.json shards[${index}]`;
    if (!SHARD_ID.test(shard.id ?? '')) throw new Error(`${where}: id must be 1 to 12 lowercase letters or digits`);
    if (index === 0 && (shard.roleArn || shard.region || shard.plans)) {
      throw new Error(`${where}: the home shard is this account and Region with the stack's own plans: no roleArn, region or plans`);
    }
    // The functions' own rights end at their account and Region: any other shard, in this account
    // too, is reached through the role infra/shard/template.yml creates there.
    if (index > 0 && (!shard.roleArn || !shard.externalId || !shard.plans)) {
      throw new Error(`${where}: another shard needs roleArn, externalId and plans (infra/shard/template.yml's outputs)`);
    }
  });
  return shards;
}

/** SHARDS for the functions (shared/config.ts), or no setting at all for one shard. */
export async function setting() {
  const shards = readShards();
  return shards.length === 0 ? { Ref: 'AWS::NoValue' } : JSON.stringify(shards);
}

/** The shard roles, for sts:AssumeRole; none for one shard. */
export function shardRoleArns() {
  return readShards()
    .slice(1)
    .map((shard) => shard.roleArn);
}
