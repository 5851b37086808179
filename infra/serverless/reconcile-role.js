import { customerLockStatement } from './customer-statements.js';
import { lambdaRole, logsStatement, tableArn } from './iam.js';
import {
  associateKeyStatement,
  deleteApiKeyStatement,
  listApiKeysStatement,
  listPlanKeysStatement,
  readApiKeyStatement,
  readPlanKeyStatement,
  removePlanKeyStatement,
} from './provisioning-statements.js';
import { queryDueIndexStatement } from './rotation-statements.js';

/**
 * The reconcile function's role (shared/reconcile). It reads what exists: every API key
 * (GetApiKeys without values: the listing cannot be narrowed by tag), this stage's keys
 * (GetApiKey) and the keys of each of this stage's plans (GetUsagePlanKeys); the tracked key items
 * through the 'due' index and the customers' tiers (BatchGetItem). It repairs: deletes orphan keys
 * tagged with this stage (DeleteApiKey), moves a key into the plan of its
 * tier (DeleteUsagePlanKey, CreateUsagePlanKey, GetUsagePlanKey when API Gateway answers "already
 * associated") under the customer lock (conditional PutItem, DeleteItem), and records the outcome
 * on the key item (UpdateItem). It never creates a key, changes a plan or sends email.
 */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');

  const statements = [
    logsStatement(`${service}-${stage}-reconcile`),
    listApiKeysStatement(),
    readApiKeyStatement(stage),
    listPlanKeysStatement(),
    associateKeyStatement(),
    readPlanKeyStatement(),
    removePlanKeyStatement(),
    deleteApiKeyStatement(stage),
    {
      // PutItem only takes the customer lock: the reconciler writes key items with UpdateItem.
      Sid: 'ReconcileRecords',
      Effect: 'Allow',
      Action: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'],
      Resource: tableArn(),
    },
    customerLockStatement(),
    queryDueIndexStatement(),
  ];

  return { Resources: { ReconcileRole: lambdaRole(statements) } };
}
