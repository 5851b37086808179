// Every function's IAM role, from one table: function -> the statements its role gets, in order.
// Each statement is a named builder of statements.js (named after its Sid), where the reason for
// it and what IAM cannot narrow are written. One role per function, and a role holds nothing
// but what its row lists: test/integration/packaged-template.test.ts checks every grant of the
// packaged template against what each function's code can call.
import { resolveParam } from './source.js';
import {
  assumeShardRoles,
  associateKeyWithStagePlans,
  consumeProvisioningQueue,
  consumeTierChangesQueue,
  createApiKey,
  customerRecords,
  deleteOwnApiKey,
  enqueueRegistration,
  keyRecords,
  listApiKeys,
  publishLifecycleEvents,
  listStagePlanKeys,
  ownLogGroup,
  queryCustomerKeys,
  queryDueIndex,
  readCustomerRecords,
  readOwnApiKey,
  readStagePlanKeys,
  readStagePlans,
  readStagePlanUsage,
  readTableStream,
  reconcileRecords,
  registrationTable,
  releaseCustomerLock,
  removeKeyFromStagePlans,
  sendKeyEmail,
  sendToEventsDeadLetterQueue,
  tagApiKeyOnCreate,
  updateOwnApiKey,
} from './statements.js';

/**
 * The calls of the provisioning saga (claim, create key, associate, record, email, rollback), on
 * this stage's table, plans and sender. register runs it for synchronous requests, provisionWorker
 * for queued ones, resumeRegistrations for unfinished ones, and the rotations make their new keys
 * with it, so each of them takes exactly these.
 */
const PROVISIONING_SAGA = [
  registrationTable,
  createApiKey,
  tagApiKeyOnCreate,
  // GetApiKeys (nameQuery, to find a key a crashed attempt created) and GetApiKey.
  listApiKeys,
  readOwnApiKey,
  // Rollback of a key whose association failed for good.
  deleteOwnApiKey,
  associateKeyWithStagePlans,
  readStagePlans,
  readStagePlanKeys,
  sendKeyEmail,
];

/**
 * Rotation (DESIGN §1): the saga makes the new key in the same plan and emails it; the due keys
 * come from the index; the old key is disabled at once when the grace is zero. A rotation holds the
 * customer lock, so it cannot race a tier change or a revocation of the same customer.
 */
const ROTATION = [...PROVISIONING_SAGA, releaseCustomerLock, queryDueIndex, updateOwnApiKey];

/**
 * A tier change moves each live key from its plan to the new tier's plan: DeleteUsagePlanKey,
 * CreateUsagePlanKey (GetUsagePlanKey when API Gateway answers "already associated"), and back on
 * a failure, under the customer lock. It never changes a plan itself (UpdateUsagePlan, PATCH
 * /usageplans/<id>): plans belong to the stack.
 */
const TIER_CHANGE = [
  customerRecords,
  releaseCustomerLock,
  associateKeyWithStagePlans,
  readStagePlanKeys,
  removeKeyFromStagePlans,
];

/**
 * function (as named in serverless.yml) -> its role's statements, in policy order. Every role
 * starts with ownLogGroup (its own function's log group only). The role's logical id is the
 * function's name in PascalCase + "Role", which each function's `role:` in serverless.yml names.
 */
export const ROLES = {
  // The saga for synchronous requests, and enqueueing `Prefer: respond-async` registrations.
  register: [ownLogGroup, ...PROVISIONING_SAGA, enqueueRegistration],

  // The same saga for queued registrations, and consuming the provisioning queue it is triggered by.
  provisionWorker: [ownLogGroup, ...PROVISIONING_SAGA, consumeProvisioningQueue],

  // The scheduled rotation of due keys.
  rotateKeys: [ownLogGroup, ...ROTATION],

  // Retirement: reminds the customer, disables keys whose grace is over and deletes them after the
  // retention period. It creates nothing: no PutItem, no key creation, no plan calls.
  retireKeys: [ownLogGroup, keyRecords, queryDueIndex, updateOwnApiKey, deleteOwnApiKey, sendKeyEmail],

  // The rotation of rotateKeys, on demand, for one customer's keys.
  rotateCustomer: [ownLogGroup, ...ROTATION],

  // One customer's tier change, on request.
  changeTier: [ownLogGroup, ...TIER_CHANGE],

  // The same tier change for the billing system's PlanChanged events, and consuming the
  // tier-changes queue they arrive on.
  changeTierEvents: [ownLogGroup, ...TIER_CHANGE, consumeTierChangesQueue],

  // Disables every key of the customer (on this stage's keys only) and records it; nothing else.
  revokeCustomer: [ownLogGroup, customerRecords, releaseCustomerLock, updateOwnApiKey],

  // Read-only: the customer's key items and their plans' usage.
  customerUsage: [ownLogGroup, queryCustomerKeys, readStagePlanUsage],

  // Read-only, the table alone: a registration, a customer's profile and key items, its events.
  customerReads: [ownLogGroup, readCustomerRecords],

  // The reconciler (shared/reconcile) reads what exists: every API key (GetApiKeys without values:
  // the listing cannot be narrowed by tag), this stage's keys (GetApiKey) and the keys of each of
  // this stage's plans (GetUsagePlanKeys); the tracked key items through the 'due' index and the
  // customers' tiers. It repairs: deletes orphan keys tagged with this stage, moves a key into the
  // plan of its tier under the customer lock, and records the outcome on the key item. It never
  // creates a key, changes a plan or sends email.
  reconcile: [
    ownLogGroup,
    listApiKeys,
    readOwnApiKey,
    listStagePlanKeys,
    associateKeyWithStagePlans,
    readStagePlanKeys,
    removeKeyFromStagePlans,
    deleteOwnApiKey,
    reconcileRecords,
    releaseCustomerLock,
    queryDueIndex,
  ],

  // The saga (it resumes registrations through it, exactly as a repeated request would) and the
  // RESUME partition of the 'due' index, where unfinished registrations wait.
  resumeRegistrations: [ownLogGroup, ...PROVISIONING_SAGA, queryDueIndex],

  // The sweep's other half: the REPAIR partition of the 'due' index, where customers whose
  // operation died wait, and the calls that finish a rotation (the saga's on API Gateway and SES:
  // the successor is made and emailed). In the table it writes the customer's records through
  // its lease, never a registration: customerRecords, not the saga's registrationTable (no
  // GetItem, no condition check). Finishing a revocation or a zero-grace rotation disables keys
  // (UpdateApiKey) and finishing a tier change or a plan repair takes keys out of plans
  // (DeleteUsagePlanKey): the one sweep function never had those two, so in AWS it could not
  // finish them; nothing else is beyond what it had.
  finishOperations: [
    ownLogGroup,
    customerRecords,
    ...PROVISIONING_SAGA.filter((statement) => statement !== registrationTable),
    queryDueIndex,
    updateOwnApiKey,
    removeKeyFromStagePlans,
  ],

  // The lifecycle events' publisher: Lambda reads the table's stream for it (and sends what it
  // gives up on to the stream's DLQ); it puts the outbox's events on the bus, with this stage's
  // source. Nothing of the table itself, no API Gateway, no email.
  publishEvents: [ownLogGroup, readTableStream, publishLifecycleEvents, sendToEventsDeadLetterQueue],
};

/** register -> RegisterRole. */
export const roleLogicalId = (functionName) => `${functionName.charAt(0).toUpperCase()}${functionName.slice(1)}Role`;

/** The one shape of every function role: assumable by Lambda, one inline policy of its statements. */
const lambdaRole = (statements) => ({
  Type: 'AWS::IAM::Role',
  Properties: {
    AssumeRolePolicyDocument: {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ],
    },
    Policies: [
      {
        PolicyName: 'least-privilege',
        PolicyDocument: { Version: '2012-10-17', Statement: statements },
      },
    ],
  },
});

/**
 * One AWS::IAM::Role per row of ROLES. The table and serverless.yml must agree: every function has
 * a row, every row a function, and each function's `role:` names its row's role.
 */
export async function resources({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const functions = (await resolveVariable('self:functions')) ?? {};

  const mismatches = [
    ...Object.keys(functions)
      .filter((name) => !(name in ROLES))
      .map((name) => `function ${name} has no row in infra/serverless/roles.js`),
    ...Object.keys(ROLES)
      .filter((name) => !(name in functions))
      .map((name) => `infra/serverless/roles.js has a row for ${name}, which serverless.yml does not define`),
    ...Object.entries(functions)
      .filter(([name, definition]) => name in ROLES && definition?.role !== roleLogicalId(name))
      .map(([name, definition]) => `function ${name}: role is ${definition?.role}, expected ${roleLogicalId(name)}`),
  ];
  if (mismatches.length > 0) throw new Error(mismatches.join('; '));

  const sender = String(await resolveParam(resolveVariable, 'senderEmail'));
  const senderDomain = sender.split('@')[1];
  if (!senderDomain) throw new Error(`param senderEmail is not an address: "${sender}"`);
  const configurationSet = await resolveParam(resolveVariable, 'sesConfigurationSet');
  const eventBus = String(await resolveParam(resolveVariable, 'eventBusName'));

  const Resources = {};
  for (const [functionName, builders] of Object.entries(ROLES)) {
    const context = { service, stage, functionName, sender, senderDomain, configurationSet, eventBus };
    const statements = builders.map((build) => build(context));
    // A function that calls API Gateway does so in every shard: through each shard's role.
    const shardRoles = assumeShardRoles();
    if (shardRoles && statements.some((statement) => [statement.Action].flat().some((action) => action.startsWith('apigateway:')))) {
      statements.push(shardRoles);
    }
    Resources[roleLogicalId(functionName)] = lambdaRole(statements);
  }
  return { Resources };
}
