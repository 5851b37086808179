import cf from 'cloudfront';

// keyplan's edge router: a CloudFront Function (runtime cloudfront-js-2.0, viewer-request event)
// in front of the shards' API stages (docs/edge-routing.md). It reads the API key from the
// x-api-key header, takes the shard from the key's kp_<shard>_ prefix and sends the request to
// that shard's API stage with cf.updateRequestOrigin. A request with no key, a key of another
// shape or the prefix of no shard gets the answer API Gateway gives a request without a valid key.
// Whether the key exists is for API Gateway to say, not for this function.
//
// This file is a template: infra/edge/build-edge-function.ts puts the shard table in place of the
// empty one below (never edit a table in by hand). As it stands, it refuses every request.
//
// The runtime is ECMAScript 5.1 with some later features (const, let, template literals, arrow
// functions) and no Node.js modules; the whole function must stay under 10 KB. The key is never
// copied into a header or written to the function's log.

// Shard id -> { domainName, originPath } of the shard's API stage.
const SHARDS = /* @shards */ {};

// The exact shape of keyplan's key values (shared/core/key-value.ts): group 1 is the shard id.
const KEY_VALUE = /^kp_([a-z0-9]{1,12})_[0-9A-Za-z]{33}$/;

function forbidden() {
  return {
    statusCode: 403,
    statusDescription: 'Forbidden',
    headers: { 'content-type': { value: 'application/json' } },
    body: { encoding: 'text', data: '{"message":"Forbidden"}' },
  };
}

// eslint-disable-next-line @typescript-eslint/no-unused-vars -- CloudFront calls it by this name.
function handler(event) {
  // CloudFront lower-cases header names in the event, whatever case the client sent.
  const header = event.request.headers['x-api-key'];
  // Two x-api-key headers: which one the origin would read is not ours to guess.
  if (!header || (header.multiValue && header.multiValue.length > 1)) return forbidden();
  const match = KEY_VALUE.exec(header.value);
  if (!match || !Object.prototype.hasOwnProperty.call(SHARDS, match[1])) return forbidden();
  const shard = SHARDS[match[1]];
  cf.updateRequestOrigin({
    domainName: shard.domainName,
    originPath: shard.originPath,
    customOriginConfig: { port: 443, protocol: 'https', sslProtocols: ['TLSv1.2'] },
  });
  return event.request;
}
