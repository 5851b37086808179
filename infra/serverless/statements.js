// Every IAM statement a function role can get, one named builder per statement (named after its
// Sid), each with the reason it exists and what IAM cannot narrow. roles.js says which function
// gets which. Sections by resource: logs, the table (and its stream), API Gateway keys, API
// Gateway plans, SES, SQS, EventBridge.
//
// A builder takes the role's context, resolved once by roles.js:
//   { service, stage, functionName, sender, senderDomain, configurationSet, eventBus }
// and returns one statement. ARNs go through Fn::Sub with pseudo parameters, so the template is
// built offline (no ${aws:accountId} lookups) and is valid in any partition.
import { EVENTS_DLQ, eventBusArn, eventSourceOf } from './lifecycle-events.js';
import { provisioningQueueIds } from './provisioning-queue.js';
import { readTable, readTiers, usagePlanLogicalIds } from './source.js';
import { shardRoleArns } from './shards.js';
import { TIER_CHANGES_QUEUE } from './tier-changes-queue.js';

const sub = (text) => ({ 'Fn::Sub': text });

/**
 * The tag every API key of a stage carries (value: the stage, the functions' STAGE). The roles
 * admit calls on a key only with it, so the code must tag with exactly this key.
 */
const STAGE_TAG = 'keyplan:stage';

/** The stage's table (infra/serverless/table.js). */
const tableArn = () => ({ 'Fn::GetAtt': ['KeyplanTable', 'Arn'] });

/** API Gateway management authorizes HTTP verbs on resource paths, not operation names. */
const apiGatewayArn = (resourcePath) => sub(`arn:\${AWS::Partition}:apigateway:\${AWS::Region}::${resourcePath}`);

/**
 * A path under each of this stage's usage plans (one per tier of infra/tiers.json), e.g. '/keys'
 * for CreateUsagePlanKey; '' is the plan itself. Never a wildcard plan: plans of other stacks in
 * the account stay out of reach.
 */
const stagePlanArns = (suffix) =>
  Object.values(usagePlanLogicalIds(readTiers())).map((id) => apiGatewayArn(`/usageplans/\${${id}}${suffix}`));

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

/**
 * Lambda's own logging permissions, limited to the function's log group. CreateLogGroup is left
 * out on purpose: the stack owns the group (with its retention), and a function able to recreate
 * it after a deletion would bring it back without one. Every role starts with it.
 */
export const ownLogGroup = ({ service, stage, functionName }) => ({
  Sid: 'OwnLogGroup',
  Effect: 'Allow',
  Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
  Resource: sub(
    `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${service}-${stage}-${functionName}:*`,
  ),
});

// ---------------------------------------------------------------------------------------------
// The table (base table only, unless the Sid names the index)
// ---------------------------------------------------------------------------------------------

/**
 * The provisioning saga's claim, record and rollback. TransactWriteItems has no IAM action of its
 * own: each item is checked as ConditionCheckItem, PutItem or UpdateItem. The 'due' index is not
 * granted: the saga reads the base table only.
 */
export const registrationTable = () => ({
  Sid: 'RegistrationTable',
  Effect: 'Allow',
  Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem'],
  Resource: tableArn(),
});

/**
 * A tier change's and a revocation's records: the customer's profile and key items, and the lock,
 * on the base table (the 'due' index is not read). TransactWriteItems has no action of its own: a
 * revocation's transaction is two updates, checked as UpdateItem, and has no condition-check item.
 */
export const customerRecords = () => ({
  Sid: 'CustomerRecords',
  Effect: 'Allow',
  Action: ['dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  Resource: tableArn(),
});

/**
 * The per-customer lock that keeps a tier change, a revocation, a rotation and a reconciler repair
 * of one customer apart. Taking it is a conditional PutItem, which every holder already has for its
 * own writes; releasing it is a DeleteItem, the only delete on the table any function makes.
 */
export const releaseCustomerLock = () => ({
  Sid: 'ReleaseCustomerLock',
  Effect: 'Allow',
  Action: 'dynamodb:DeleteItem',
  Resource: tableArn(),
});

/**
 * Retirement's records: it reads and updates key items (reminded, disabled, deleted). It creates
 * nothing, so it has no PutItem.
 */
export const keyRecords = () => ({
  Sid: 'KeyRecords',
  Effect: 'Allow',
  Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
  Resource: tableArn(),
});

/**
 * The reconciler's records: the customers' tiers (BatchGetItem) and the outcome on the key item
 * (UpdateItem). PutItem only takes the customer lock: the reconciler writes key items with
 * UpdateItem.
 */
export const reconcileRecords = () => ({
  Sid: 'ReconcileRecords',
  Effect: 'Allow',
  Action: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'],
  Resource: tableArn(),
});

/**
 * The read routes: a registration (GetItem), a customer's profile and key items and its events
 * (Query of its partition). They write nothing.
 */
export const readCustomerRecords = () => ({
  Sid: 'ReadCustomerRecords',
  Effect: 'Allow',
  Action: ['dynamodb:GetItem', 'dynamodb:Query'],
  Resource: tableArn(),
});

/** The usage route reads the customer's key items; it writes nothing. */
export const queryCustomerKeys = () => ({
  Sid: 'QueryCustomerKeys',
  Effect: 'Allow',
  Action: 'dynamodb:Query',
  Resource: tableArn(),
});

// The sparse index of keys waiting for rotation or retirement, and of unfinished registrations
// (infra/table.json). Read from the table definition, so a renamed index fails the package instead
// of deploying a dead grant.
const DUE_INDEX = 'due';

function dueIndexName() {
  const indexes = readTable().GlobalSecondaryIndexes ?? [];
  if (!indexes.some((index) => index.IndexName === DUE_INDEX)) {
    throw new Error(`infra/table.json has no index "${DUE_INDEX}", which the rotation jobs query`);
  }
  return DUE_INDEX;
}

/** Query on the 'due' index only (the table's own Query is in each role's table statement). */
export const queryDueIndex = () => ({
  Sid: 'QueryDueIndex',
  Effect: 'Allow',
  Action: 'dynamodb:Query',
  Resource: sub(`\${KeyplanTable.Arn}/index/${dueIndexName()}`),
});

/**
 * Lambda reads the table's stream for its consumer with the consumer's role (the event source
 * mapping polls DescribeStream, GetShardIterator and GetRecords; ListStreams is in Lambda's list of
 * what a DynamoDB trigger needs). The stream of this table only, by its ARN: the table itself and
 * any other stream stay out of reach. The stream carries every item's new image; its consumer
 * reads only the outbox's (the trigger's filter, and the code again).
 */
export const readTableStream = () => ({
  Sid: 'ReadTableStream',
  Effect: 'Allow',
  Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
  Resource: { 'Fn::GetAtt': ['KeyplanTable', 'StreamArn'] },
});

// ---------------------------------------------------------------------------------------------
// API Gateway: keys
// ---------------------------------------------------------------------------------------------
//
// A stage touches only its own keys (DESIGN §7): every key it creates carries the tag
// keyplan:stage = <stage>, and every call on one key requires that tag. API Gateway's IAM offers
// the keys for it (Service Authorization Reference, "Actions, resources, and condition keys for
// Amazon API Gateway Management",
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonapigatewaymanagement.html):
// aws:ResourceTag/${TagKey} on GET, PATCH and DELETE of the ApiKey resource
// (arn:${Partition}:apigateway:${Region}::/apikeys/${ApiKeyId}), aws:RequestTag/${TagKey} on POST
// to ApiKeys (/apikeys, CreateApiKey) and on PUT to Tags (tag-on-create). What IAM cannot say is
// written next to the statement: the listing, a key's name, and re-tagging.

/** Calls on one key: only keys this stage created (tagged with it). */
const ownKeysOnly = (stage) => ({ StringEquals: { [`aws:ResourceTag/${STAGE_TAG}`]: stage } });
/** Creating a key (and tagging it on create): only with this stage's tag. */
const taggedForStage = (stage) => ({ StringEquals: { [`aws:RequestTag/${STAGE_TAG}`]: stage } });

/** CreateApiKey. A key without this stage's tag cannot be created, so none escapes the conditions below. */
export const createApiKey = ({ stage }) => ({
  Sid: 'CreateApiKey',
  Effect: 'Allow',
  Action: 'apigateway:POST',
  Resource: apiGatewayArn('/apikeys'),
  Condition: taggedForStage(stage),
});

/**
 * CreateApiKey with tags is authorized as apigateway:POST on /apikeys plus apigateway:PUT on the
 * tags of the new key (tag-on-create), see the "API operations" table of
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonapigatewaymanagement.html
 * and TagResource = PUT /tags/{resource_arn}:
 * https://docs.aws.amazon.com/apigateway/latest/api/API_TagResource.html
 * The tagged resource's ARN appears URL-encoded in the path; the key id is not known before the
 * call, so only the /apikeys/ prefix can be fixed.
 * Not expressible: PUT on Tags has no aws:ResourceTag key, so IAM cannot tell tag-on-create from
 * TagResource on an existing key. This grant therefore also lets the role put this stage's tag on
 * any other key of the account, which the conditions on one key would then admit. keyplan never
 * calls TagResource; that a key is its own by exact name is for the code to check, as no condition
 * key carries a key's name.
 */
export const tagApiKeyOnCreate = ({ stage }) => ({
  Sid: 'TagApiKeyOnCreate',
  Effect: 'Allow',
  Action: 'apigateway:PUT',
  Resource: sub(
    'arn:${AWS::Partition}:apigateway:${AWS::Region}::/tags/arn%3A${AWS::Partition}%3Aapigateway%3A${AWS::Region}%3A%3A%2Fapikeys%2F*',
  ),
  Condition: taggedForStage(stage),
});

/**
 * GetApiKeys: a listing (the reconciler), or a lookup by name (nameQuery, the saga finding a key a
 * crashed attempt created). Values come back only with includeValues, which is the same action:
 * the functions that never need one do not ask.
 * Not expressible: the listing cannot be narrowed by tag. It is GET on the ApiKeys collection
 * (/apikeys), which carries no tags of its own; aws:ResourceTag there would refuse every listing,
 * not filter it. So this grant reads every key of the account, values included when asked: the
 * code must keep only this stage's keys (tag and exact name; nameQuery is a prefix match).
 */
export const listApiKeys = () => ({
  Sid: 'ListApiKeys',
  Effect: 'Allow',
  Action: 'apigateway:GET',
  Resource: apiGatewayArn('/apikeys'),
});

/** GetApiKey, of this stage's keys only. */
export const readOwnApiKey = ({ stage }) => ({
  Sid: 'ReadOwnApiKey',
  Effect: 'Allow',
  Action: 'apigateway:GET',
  Resource: apiGatewayArn('/apikeys/*'),
  Condition: ownKeysOnly(stage),
});

/**
 * UpdateApiKey (enabled=false on a retired or revoked key) is authorized as PATCH on the key, of
 * this stage's keys only. Keys only: PATCH on /usageplans/<id> would be UpdateUsagePlan, which no
 * function makes.
 */
export const updateOwnApiKey = ({ stage }) => ({
  Sid: 'UpdateOwnApiKey',
  Effect: 'Allow',
  Action: 'apigateway:PATCH',
  Resource: apiGatewayArn('/apikeys/*'),
  Condition: ownKeysOnly(stage),
});

/**
 * DeleteApiKey, of this stage's keys only: the saga's rollback of a key whose association failed
 * for good, retirement's last step, and the reconciler's orphans.
 */
export const deleteOwnApiKey = ({ stage }) => ({
  Sid: 'DeleteOwnApiKey',
  Effect: 'Allow',
  Action: 'apigateway:DELETE',
  Resource: apiGatewayArn('/apikeys/*'),
  Condition: ownKeysOnly(stage),
});

// ---------------------------------------------------------------------------------------------
// API Gateway: this stage's usage plans (never a plan itself: UpdateUsagePlan is no one's)
// ---------------------------------------------------------------------------------------------

/** GetUsagePlan: the plan limits quoted in the key email. */
export const readStagePlans = () => ({
  Sid: 'ReadStagePlans',
  Effect: 'Allow',
  Action: 'apigateway:GET',
  Resource: stagePlanArns(''),
});

/** CreateUsagePlanKey, in this stage's plans only: the saga's association, a tier change, a repair. */
export const associateKeyWithStagePlans = () => ({
  Sid: 'AssociateKeyWithStagePlans',
  Effect: 'Allow',
  Action: 'apigateway:POST',
  Resource: stagePlanArns('/keys'),
});

/**
 * GetUsagePlanKey, which tells our own repeated association ("already associated" counts as
 * success) from a key sitting in another plan of the stage.
 */
export const readStagePlanKeys = () => ({
  Sid: 'ReadStagePlanKeys',
  Effect: 'Allow',
  Action: 'apigateway:GET',
  Resource: stagePlanArns('/keys/*'),
});

/** GetUsagePlanKeys: the listing of the keys in each of this stage's plans. */
export const listStagePlanKeys = () => ({
  Sid: 'ListStagePlanKeys',
  Effect: 'Allow',
  Action: 'apigateway:GET',
  Resource: stagePlanArns('/keys'),
});

/** DeleteUsagePlanKey, in this stage's plans only: a tier change, and the reconciler's repair. */
export const removeKeyFromStagePlans = () => ({
  Sid: 'RemoveKeyFromStagePlans',
  Effect: 'Allow',
  Action: 'apigateway:DELETE',
  Resource: stagePlanArns('/keys/*'),
});

/** GetUsage = GET /usageplans/<id>/usage, in this stage's plans only. */
export const readStagePlanUsage = () => ({
  Sid: 'ReadStagePlanUsage',
  Effect: 'Allow',
  Action: 'apigateway:GET',
  Resource: stagePlanArns('/usage'),
});

// ---------------------------------------------------------------------------------------------
// SES
// ---------------------------------------------------------------------------------------------

/**
 * SendEmail as this stage's sender: key emails, and retirement reminders. The identity checked is
 * the sender's address or its domain, whichever SES verified; the condition keeps a domain
 * identity from letting the function send as anyone else there. SendEmail only: the mailer never
 * sends raw MIME (SendRawEmail), so no header is ever ours to build.
 */
export const sendKeyEmail = ({ sender, senderDomain, configurationSet }) => ({
  Sid: 'SendKeyEmail',
  Effect: 'Allow',
  Action: 'ses:SendEmail',
  Resource: [
    sub(`arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:identity/${sender}`),
    sub(`arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:identity/${senderDomain}`),
    // A configuration set named in the call is authorized as a resource of its own.
    ...(configurationSet
      ? [sub(`arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:configuration-set/${configurationSet}`)]
      : []),
  ],
  Condition: { StringEquals: { 'ses:FromAddress': sender } },
});

// ---------------------------------------------------------------------------------------------
// SQS
// ---------------------------------------------------------------------------------------------

/** A queue's ARN; several as a list (one shard has one provisioning queue, the ARN alone). */
const queueArns = (queueIds) => {
  const arns = queueIds.map((queueId) => ({ 'Fn::GetAtt': [queueId, 'Arn'] }));
  return arns.length === 1 ? arns[0] : arns;
};

/**
 * register sends the registrations that ask for `Prefer: respond-async` to the provisioning queue
 * of the shard each is placed on: the home shard's, and each other shard's own
 * (provisioning-queue.js).
 */
export const enqueueRegistration = () => ({
  Sid: 'EnqueueRegistration',
  Effect: 'Allow',
  Action: 'sqs:SendMessage',
  Resource: queueArns(provisioningQueueIds()),
});

/**
 * Lambda polls a queue for its function with the function's role, so the event source mapping
 * needs these actions in the consumer's role. The DLQ is never granted: SQS moves messages there
 * itself.
 */
const consumeQueue = (sid, queueIds) => ({
  Sid: sid,
  Effect: 'Allow',
  Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
  Resource: queueArns(queueIds),
});

/** provisionWorker's triggers: each shard's provisioning queue (provisioning-queue.js). */
export const consumeProvisioningQueue = () => consumeQueue('ConsumeProvisioningQueue', provisioningQueueIds());

/** changeTierEvents' trigger (tier-changes-queue.js). */
export const consumeTierChangesQueue = () => consumeQueue('ConsumeTierChangesQueue', [TIER_CHANGES_QUEUE]);

/**
 * What the table stream's trigger gives up on (a batch failed maximumRetryAttempts times) Lambda
 * describes in a message to its on-failure destination, sent with the function's role.
 */
export const sendToEventsDeadLetterQueue = () => ({
  Sid: 'SendToEventsDeadLetterQueue',
  Effect: 'Allow',
  Action: 'sqs:SendMessage',
  Resource: { 'Fn::GetAtt': [EVENTS_DLQ, 'Arn'] },
});

// ---------------------------------------------------------------------------------------------
// EventBridge
// ---------------------------------------------------------------------------------------------

/**
 * PutEvents of the lifecycle events, on the one bus (param eventBusName), and only with this
 * stage's source (`keyplan.<stage>`, the function's EVENT_SOURCE): EventBridge's IAM evaluates the
 * condition key events:source against each entry's Source
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html; PutEvents'
 * row in https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html).
 * So the role cannot speak for another system on the bus, such as the billing system's
 * PlanChanged events, which changeTierEvents acts on. Not narrowed: the detail-types (the event
 * names live in the code, shared/core/events.ts).
 */
export const publishLifecycleEvents = ({ service, stage, eventBus }) => ({
  Sid: 'PublishLifecycleEvents',
  Effect: 'Allow',
  Action: 'events:PutEvents',
  Resource: eventBusArn(eventBus),
  Condition: { StringEquals: { 'events:source': eventSourceOf(service, stage) } },
});

// ---------------------------------------------------------------------------------------------
// Shards
// ---------------------------------------------------------------------------------------------

/**
 * The roles of the other shards (infra/shards.json; infra/shard/template.yml creates each), for
 * the functions that call API Gateway: their keys there are reached through that role. Named ARNs
 * only, and nothing at all for a deployment of one shard. The external id is checked by each
 * shard role's trust policy; the role's own policy limits what may be done there.
 */
export const assumeShardRoles = () => {
  const roles = shardRoleArns();
  return roles.length === 0
    ? undefined
    : { Sid: 'AssumeShardRoles', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: roles };
};
