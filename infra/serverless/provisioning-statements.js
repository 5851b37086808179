import { apiGatewayArn, STAGE_TAG, stagePlanArns, sub, tableArn } from './iam.js';
import { resolveParam } from './source.js';

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

/**
 * The calls of the provisioning saga (claim, create key, associate, record, email, rollback), on
 * this stage's table, plans and sender. register runs the saga for synchronous requests and
 * provisionWorker for queued ones, so both roles take exactly these statements; rotation makes its
 * new keys with the same saga (rotation-statements.js).
 */
export async function provisioningStatements(resolveVariable) {
  const stage = await resolveVariable('sls:stage');
  return [
    {
      // TransactWriteItems has no IAM action of its own: each item is checked as ConditionCheckItem,
      // PutItem or UpdateItem. The 'due' index is not granted: the saga reads the base table only.
      Sid: 'RegistrationTable',
      Effect: 'Allow',
      Action: [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:Query',
        'dynamodb:ConditionCheckItem',
      ],
      Resource: tableArn(),
    },
    {
      // A key without this stage's tag cannot be created, so none escapes the conditions below.
      Sid: 'CreateApiKey',
      Effect: 'Allow',
      Action: 'apigateway:POST',
      Resource: apiGatewayArn('/apikeys'),
      Condition: taggedForStage(stage),
    },
    {
      // CreateApiKey with tags is authorized as apigateway:POST on /apikeys plus apigateway:PUT on
      // the tags of the new key (tag-on-create), see the "API operations" table of
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonapigatewaymanagement.html
      // and TagResource = PUT /tags/{resource_arn}:
      // https://docs.aws.amazon.com/apigateway/latest/api/API_TagResource.html
      // The tagged resource's ARN appears URL-encoded in the path; the key id is not known before
      // the call, so only the /apikeys/ prefix can be fixed.
      // Not expressible: PUT on Tags has no aws:ResourceTag key, so IAM cannot tell tag-on-create
      // from TagResource on an existing key. This grant therefore also lets the role put this
      // stage's tag on any other key of the account, which the conditions on one key would then
      // admit. keyplan never calls TagResource; that a key is its own by exact name is for the
      // code to check, as no condition key carries a key's name.
      Sid: 'TagApiKeyOnCreate',
      Effect: 'Allow',
      Action: 'apigateway:PUT',
      Resource: sub(
        'arn:${AWS::Partition}:apigateway:${AWS::Region}::/tags/arn%3A${AWS::Partition}%3Aapigateway%3A${AWS::Region}%3A%3A%2Fapikeys%2F*',
      ),
      Condition: taggedForStage(stage),
    },
    // GetApiKeys (nameQuery, to find a key a crashed attempt created) and GetApiKey.
    listApiKeysStatement(),
    readApiKeyStatement(stage),
    // Rollback of a key whose association failed for good.
    deleteApiKeyStatement(stage),
    associateKeyStatement(),
    {
      // GetUsagePlan: the plan limits quoted in the key email.
      Sid: 'ReadStagePlans',
      Effect: 'Allow',
      Action: 'apigateway:GET',
      Resource: stagePlanArns(''),
    },
    readPlanKeyStatement(),
    await sendKeyEmailStatement(resolveVariable),
  ];
}

/** CreateUsagePlanKey, in this stage's plans only: the saga's association, and a tier change. */
export function associateKeyStatement() {
  return {
    Sid: 'AssociateKeyWithStagePlans',
    Effect: 'Allow',
    Action: 'apigateway:POST',
    Resource: stagePlanArns('/keys'),
  };
}

/**
 * GetUsagePlanKey, which tells our own repeated association ("already associated" counts as
 * success) from a key sitting in another plan of the stage.
 */
export function readPlanKeyStatement() {
  return {
    Sid: 'ReadStagePlanKeys',
    Effect: 'Allow',
    Action: 'apigateway:GET',
    Resource: stagePlanArns('/keys/*'),
  };
}

/**
 * GetApiKeys: a listing, or a lookup by name. Values come back only with includeValues, which is
 * the same action: the functions that never need one do not ask.
 * Not expressible: the listing cannot be narrowed by tag. It is GET on the ApiKeys collection
 * (/apikeys), which carries no tags of its own; aws:ResourceTag there would refuse every listing,
 * not filter it. So this grant reads every key of the account, values included when asked: the
 * code must keep only this stage's keys (tag and exact name; nameQuery is a prefix match).
 */
export function listApiKeysStatement() {
  return {
    Sid: 'ListApiKeys',
    Effect: 'Allow',
    Action: 'apigateway:GET',
    Resource: apiGatewayArn('/apikeys'),
  };
}

/** GetApiKey, of this stage's keys only. */
export function readApiKeyStatement(stage) {
  return {
    Sid: 'ReadOwnApiKey',
    Effect: 'Allow',
    Action: 'apigateway:GET',
    Resource: apiGatewayArn('/apikeys/*'),
    Condition: ownKeysOnly(stage),
  };
}

/** GetUsagePlanKeys: the listing of the keys in each of this stage's plans. */
export function listPlanKeysStatement() {
  return {
    Sid: 'ListStagePlanKeys',
    Effect: 'Allow',
    Action: 'apigateway:GET',
    Resource: stagePlanArns('/keys'),
  };
}

/** DeleteUsagePlanKey, in this stage's plans only: a tier change, and the reconciler's repair. */
export function removePlanKeyStatement() {
  return {
    Sid: 'RemoveKeyFromStagePlans',
    Effect: 'Allow',
    Action: 'apigateway:DELETE',
    Resource: stagePlanArns('/keys/*'),
  };
}

/**
 * DeleteApiKey, of this stage's keys only: the saga's rollback, retirement's last step, and the
 * reconciler's orphans.
 */
export function deleteApiKeyStatement(stage) {
  return {
    Sid: 'DeleteOwnApiKey',
    Effect: 'Allow',
    Action: 'apigateway:DELETE',
    Resource: apiGatewayArn('/apikeys/*'),
    Condition: ownKeysOnly(stage),
  };
}

/**
 * UpdateApiKey (enabled=false on a retired or revoked key) is authorized as PATCH on the key, of
 * this stage's keys only. Keys only: PATCH on /usageplans/<id> would be UpdateUsagePlan, which no
 * function makes.
 */
export function updateApiKeyStatement(stage) {
  return {
    Sid: 'UpdateOwnApiKey',
    Effect: 'Allow',
    Action: 'apigateway:PATCH',
    Resource: apiGatewayArn('/apikeys/*'),
    Condition: ownKeysOnly(stage),
  };
}

/** SendEmail as this stage's sender: key emails, and retirement reminders. */
export async function sendKeyEmailStatement(resolveVariable) {
  const sender = await resolveParam(resolveVariable, 'senderEmail');
  const senderDomain = String(sender).split('@')[1];
  if (!senderDomain) throw new Error(`param senderEmail is not an address: "${sender}"`);
  const configurationSet = await resolveParam(resolveVariable, 'sesConfigurationSet');

  return {
    // The identity checked is the sender's address or its domain, whichever SES verified; the
    // condition keeps a domain identity from letting the function send as anyone else there.
    Sid: 'SendKeyEmail',
    Effect: 'Allow',
    // SendEmail only: the mailer never sends raw MIME (SendRawEmail), so no header is ever ours to build.
    Action: 'ses:SendEmail',
    Resource: [
      sub(`arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:identity/${sender}`),
      sub(`arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:identity/${senderDomain}`),
      // A configuration set named in the call is authorized as a resource of its own.
      ...(configurationSet
        ? [
            sub(
              `arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:configuration-set/${configurationSet}`,
            ),
          ]
        : []),
    ],
    Condition: { StringEquals: { 'ses:FromAddress': sender } },
  };
}
