import { stagePlanArns, tableArn } from './iam.js';
import {
  associateKeyStatement,
  readPlanKeyStatement,
  removePlanKeyStatement,
  updateApiKeyStatement,
} from './provisioning-statements.js';

/**
 * The per-customer lock that keeps a tier change, a revocation and a rotation of one customer
 * apart. Taking it is a conditional PutItem, which every holder already has for its own writes;
 * releasing it is a DeleteItem, the only delete on the table any function makes.
 */
export function customerLockStatement() {
  return {
    Sid: 'ReleaseCustomerLock',
    Effect: 'Allow',
    Action: 'dynamodb:DeleteItem',
    Resource: tableArn(),
  };
}

/**
 * The customer's profile and key items, and the lock, on the base table (the 'due' index is not
 * read). TransactWriteItems has no action of its own: a revocation's transaction is two updates,
 * checked as UpdateItem, and has no condition-check item.
 */
function customerRecordStatements() {
  return [
    {
      Sid: 'CustomerRecords',
      Effect: 'Allow',
      Action: ['dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      Resource: tableArn(),
    },
    customerLockStatement(),
  ];
}

/**
 * A tier change moves each live key from its plan to the new tier's plan: DeleteUsagePlanKey,
 * CreateUsagePlanKey (GetUsagePlanKey when API Gateway answers "already associated"), and back on
 * a failure. It never changes a plan itself (UpdateUsagePlan, PATCH /usageplans/<id>): plans
 * belong to the stack. changeTier runs it on request and changeTierEvents on billing events.
 */
export function tierChangeStatements() {
  return [
    ...customerRecordStatements(),
    associateKeyStatement(),
    readPlanKeyStatement(),
    removePlanKeyStatement(),
  ];
}

/**
 * Revocation disables every key of the customer (UpdateApiKey, on this stage's keys only) and
 * records it; nothing else.
 */
export function revocationStatements(stage) {
  return [...customerRecordStatements(), updateApiKeyStatement(stage)];
}

/** The usage route reads the customer's key items and GetUsage of their plans; it writes nothing. */
export function usageStatements() {
  return [
    {
      Sid: 'QueryCustomerKeys',
      Effect: 'Allow',
      Action: 'dynamodb:Query',
      Resource: tableArn(),
    },
    {
      // GetUsage = GET /usageplans/<id>/usage, in this stage's plans only.
      Sid: 'ReadStagePlanUsage',
      Effect: 'Allow',
      Action: 'apigateway:GET',
      Resource: stagePlanArns('/usage'),
    },
  ];
}
