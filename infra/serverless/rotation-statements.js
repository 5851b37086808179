import { customerLockStatement } from './customer-statements.js';
import { sub, tableArn } from './iam.js';
import {
  deleteApiKeyStatement,
  provisioningStatements,
  sendKeyEmailStatement,
  updateApiKeyStatement,
} from './provisioning-statements.js';
import { readTable } from './source.js';

// The sparse index of keys waiting for rotation or retirement (infra/table.json). Read from the
// table definition, so a renamed index fails the package instead of deploying a dead grant.
const DUE_INDEX = 'due';

function dueIndexName() {
  const indexes = readTable().GlobalSecondaryIndexes ?? [];
  if (!indexes.some((index) => index.IndexName === DUE_INDEX)) {
    throw new Error(`infra/table.json has no index "${DUE_INDEX}", which the rotation jobs query`);
  }
  return DUE_INDEX;
}

/** Query on the 'due' index only (the table's own Query is in each caller's table statement). */
export function queryDueIndexStatement() {
  return {
    Sid: 'QueryDueIndex',
    Effect: 'Allow',
    Action: 'dynamodb:Query',
    Resource: sub(`\${KeyplanTable.Arn}/index/${dueIndexName()}`),
  };
}

/**
 * Rotation (DESIGN §1): the provisioning saga makes the new key in the same plan and emails it;
 * the due keys come from the index; the old key is disabled at once when the grace is zero. A
 * rotation holds the customer lock, so it cannot race a tier change or a revocation of the same
 * customer. rotateKeys runs it on schedule and rotateCustomer on demand, so both roles take
 * exactly these.
 */
export async function rotationStatements(resolveVariable) {
  const stage = await resolveVariable('sls:stage');
  return [
    ...(await provisioningStatements(resolveVariable)),
    customerLockStatement(),
    queryDueIndexStatement(),
    updateApiKeyStatement(stage),
  ];
}

/**
 * Retirement: reminds the customer, disables keys whose grace is over and deletes them after the
 * retention period. It creates nothing, so it has no PutItem and no key creation or plan calls.
 */
export async function retirementStatements(resolveVariable) {
  const stage = await resolveVariable('sls:stage');
  return [
    {
      Sid: 'KeyRecords',
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
      Resource: tableArn(),
    },
    queryDueIndexStatement(),
    updateApiKeyStatement(stage),
    deleteApiKeyStatement(stage),
    // Reminders before a retiring key stops working.
    await sendKeyEmailStatement(resolveVariable),
  ];
}
