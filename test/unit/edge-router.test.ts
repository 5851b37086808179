import { readFileSync } from 'node:fs';
import { Script, createContext } from 'node:vm';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { buildEdgeFunction, EdgeFunctionError } from '../../infra/edge/build-edge-function';
import { newKeyValue, shardOfKeyValue } from '../../shared/core/key-value';

/*
 * The edge router runs in CloudFront's runtime, not in Node: these tests run the generated source
 * in a bare V8 context (node:vm, no require, process or Buffer) with a stand-in for the
 * `cloudfront` module that records what the function asks of it.
 */

const SHARDS = [
  { id: 'eu1', baseUrl: 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod' },
  { id: 'us1', baseUrl: 'https://f6g7h8i9j0.execute-api.us-east-1.amazonaws.com/live/' },
  { id: 'ap2', baseUrl: 'https://api-ap.example.com/v1/keys' },
];

const FORBIDDEN = {
  statusCode: 403,
  statusDescription: 'Forbidden',
  headers: { 'content-type': { value: 'application/json' } },
  body: { encoding: 'text', data: '{"message":"Forbidden"}' },
};

interface Headers {
  [name: string]: { value: string; multiValue?: { value: string }[] };
}

/** Loads the function as CloudFront would; each call returns what it answered and the origin it set. */
function load(source: string) {
  const [first, ...rest] = source.split('\n');
  expect(first).toBe("import cf from 'cloudfront';");
  const origins: unknown[] = [];
  const cloudfront = {
    updateRequestOrigin: (params: unknown) => {
      origins.push(params);
    },
  };
  const context = createContext({ __cloudfront: cloudfront });
  const handler = new Script(`const cf = __cloudfront;\n${rest.join('\n')}\nhandler;`).runInContext(context) as (
    event: unknown,
  ) => unknown;

  return (headers: Headers) => {
    origins.length = 0;
    const request = { method: 'GET', uri: '/widgets', querystring: {}, headers, cookies: {} };
    // Objects made inside the context have its prototypes: compare their JSON.
    const answer = JSON.parse(JSON.stringify(handler(viewerRequest(request)))) as unknown;
    return { answer, origins: JSON.parse(JSON.stringify(origins)) as unknown[], request };
  };
}

function viewerRequest(request: unknown) {
  return {
    version: '1.0',
    context: { distributionDomainName: 'd111111abcdef8.cloudfront.net', eventType: 'viewer-request', requestId: 'r1' },
    viewer: { ip: '198.51.100.11' },
    request,
  };
}

/** The headers of a request as CloudFront hands them to a function: names in lower case. */
function headersAsCloudFrontPassesThem(sent: Record<string, string>): Headers {
  return Object.fromEntries(Object.entries(sent).map(([name, value]) => [name.toLowerCase(), { value }]));
}

const key = (shard: string) => newKeyValue(shard);

describe('the edge router', () => {
  const route = load(buildEdgeFunction(SHARDS));

  it.each([
    ['eu1', 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com', '/prod'],
    ['us1', 'f6g7h8i9j0.execute-api.us-east-1.amazonaws.com', '/live'],
    ['ap2', 'api-ap.example.com', '/v1/keys'],
  ])('sends a key of shard %s to that shard: %s%s', (shard, domainName, originPath) => {
    const value = key(shard);

    const { answer, origins, request } = route({ 'x-api-key': { value } });

    expect(origins).toEqual([
      { domainName, originPath, customOriginConfig: { port: 443, protocol: 'https', sslProtocols: ['TLSv1.2'] } },
    ]);
    // The request goes on unchanged: the key stays in its own header and nowhere else.
    expect(answer).toEqual(JSON.parse(JSON.stringify(request)));
    expect(Object.keys(request.headers)).toEqual(['x-api-key']);
    expect(JSON.stringify(origins)).not.toContain(value);
  });

  it('routes every value newKeyValue makes, and only to its own shard', () => {
    for (const { id } of SHARDS) {
      for (let i = 0; i < 200; i++) {
        const { origins } = route({ 'x-api-key': { value: key(id) } });

        expect(origins).toHaveLength(1);
      }
    }
    const domains = SHARDS.map(({ id }) => (route({ 'x-api-key': { value: key(id) } }).origins[0] as { domainName: string }).domainName);
    expect(new Set(domains).size).toBe(SHARDS.length);
  });

  it('reads the key whatever case the client wrote the header name in', () => {
    // CloudFront lower-cases header names before the function sees them.
    for (const name of ['X-API-Key', 'x-api-key', 'X-Api-Key', 'X-API-KEY']) {
      const { origins } = route(headersAsCloudFrontPassesThem({ [name]: key('eu1') }));

      expect(origins).toHaveLength(1);
    }
  });

  it('answers 403 like API Gateway to a key of a shard it does not know', () => {
    const { answer, origins } = route({ 'x-api-key': { value: key('zz9') } });

    expect(answer).toEqual(FORBIDDEN);
    expect(origins).toEqual([]);
  });

  it('answers 403 to a request without a key', () => {
    expect(route({}).answer).toEqual(FORBIDDEN);
    expect(route({ host: { value: 'api.example.com' } }).answer).toEqual(FORBIDDEN);
    expect(route({ 'x-api-key': { value: '' } }).answer).toEqual(FORBIDDEN);
    expect(route({}).origins).toEqual([]);
  });

  const random = 'a'.repeat(33);
  it.each([
    ['a key API Gateway generated', 'Zq3vR8sT1uW4xY7zA0bC2dE5fG9hJ6kLmN0pQ2rS'],
    ['no kp_ prefix', `eu1_${random}`],
    ['an upper-case prefix', `KP_eu1_${random}`],
    ['an upper-case shard', `kp_EU1_${random}`],
    ['a random part one short', `kp_eu1_${'a'.repeat(32)}`],
    ['a random part one long', `kp_eu1_${'a'.repeat(34)}`],
    ['a character outside base62', `kp_eu1_${'a'.repeat(32)}+`],
    ['text around the key', `Bearer kp_eu1_${random}`],
    ['a trailing newline', `kp_eu1_${random}\n`],
    ['a shard named after an Object member', `kp_constructor_${random}`],
    ['a shard named __proto__', `kp___proto___${random}`],
  ])('answers 403 to %s', (_what, value) => {
    const { answer, origins } = route({ 'x-api-key': { value } });

    expect(answer).toEqual(FORBIDDEN);
    expect(origins).toEqual([]);
  });

  it('answers 403 to two x-api-key headers', () => {
    const first = key('eu1');
    const second = key('us1');

    const { answer } = route({ 'x-api-key': { value: first, multiValue: [{ value: first }, { value: second }] } });

    expect(answer).toEqual(FORBIDDEN);
  });

  it('agrees with shardOfKeyValue on which values have a shard', () => {
    const values = [
      ...SHARDS.map(({ id }) => key(id)),
      `kp_eu1_${random}`,
      `kp_eu1_${random}x`,
      `kp_eu-1_${random}`,
      `kp_abcdefghij123_${random}`,
      `kp__${random}`,
      `xkp_eu1_${random}`,
    ];

    for (const value of values) {
      const routed = route({ 'x-api-key': { value } }).origins.length === 1;

      expect(routed).toBe(shardOfKeyValue(value) !== undefined);
    }
  });

  it('refuses every request as the template stands, before a table is built into it', () => {
    const template = readFileSync(new URL('../../infra/edge/route-by-key.js', import.meta.url), 'utf8');

    expect(load(template)({ 'x-api-key': { value: key('eu1') } }).answer).toEqual(FORBIDDEN);
  });
});

describe('the edge router source', () => {
  const twenty = Array.from({ length: 20 }, (_, i) => ({
    id: `shard${String(i).padStart(2, '0')}`,
    baseUrl: `https://${'abcdefghij'.slice(0, 10)}${i}.execute-api.ap-southeast-${(i % 4) + 1}.amazonaws.com/production-stage`,
  }));

  it('stays under CloudFront Functions 10 KB with 20 shards', () => {
    const source = buildEdgeFunction(twenty);

    expect(Buffer.byteLength(source, 'utf8')).toBeLessThan(10 * 1024);
    expect(load(source)({ 'x-api-key': { value: key('shard19') } }).origins).toHaveLength(1);
  });

  it('parses as ES2020 and uses no global beyond the language (no require, process, Buffer, console)', async () => {
    // ESLint is only the parser and scope analysis here: ecmaVersion 2020 rejects later syntax,
    // no-undef every name that is neither declared nor an ES2020 built-in.
    const eslint = new ESLint({
      overrideConfigFile: true,
      overrideConfig: [
        {
          languageOptions: { ecmaVersion: 2020, sourceType: 'module', globals: {} },
          rules: { 'no-undef': 'error' },
        },
      ],
    });

    const [result] = await eslint.lintText(buildEdgeFunction(twenty), { filePath: 'route-by-key.generated.js' });

    expect(result!.messages).toEqual([]);
    const probe = await eslint.lintText("import cf from 'cloudfront';\nrequire('fs'); process.env; Buffer.from(''); console.log(cf);", {
      filePath: 'probe.js',
    });
    expect(probe[0]!.messages.map((message) => message.message)).toEqual([
      "'require' is not defined.",
      "'process' is not defined.",
      "'Buffer' is not defined.",
      "'console' is not defined.",
    ]);
  });

  it('never writes a log line or sets a header', () => {
    const source = buildEdgeFunction(SHARDS);
    const code = source.replace(/\/\/.*$/gm, '');

    expect(code).not.toMatch(/console\./);
    expect(code).not.toMatch(/headers\[[^\]]+\]\s*=/);
  });

  it('embeds the table as data the same way every time', () => {
    expect(buildEdgeFunction(SHARDS)).toBe(buildEdgeFunction(SHARDS));
    expect(buildEdgeFunction(SHARDS)).toContain(
      'const SHARDS = {"eu1":{"domainName":"a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com","originPath":"/prod"}',
    );
  });
});

describe('buildEdgeFunction', () => {
  it.each([
    ['an empty list', [], /shard list is empty/],
    ['an id that is no shard id', [{ id: 'EU-1', baseUrl: SHARDS[0]!.baseUrl }], /"EU-1" is not a shard id/],
    ['a repeated id', [SHARDS[0]!, { ...SHARDS[1]!, id: 'eu1' }], /"eu1" appears twice/],
    ['a URL that is none', [{ id: 'eu1', baseUrl: 'execute-api/prod' }], /is not a URL/],
    ['http', [{ id: 'eu1', baseUrl: 'http://a.example.com/prod' }], /is not https/],
    ['credentials', [{ id: 'eu1', baseUrl: 'https://u:p@a.example.com/prod' }], /holds credentials/],
    ['a port', [{ id: 'eu1', baseUrl: 'https://a.example.com:8443/prod' }], /names a port/],
    ['a query', [{ id: 'eu1', baseUrl: 'https://a.example.com/prod?x=1' }], /query or a fragment/],
    ['a fragment', [{ id: 'eu1', baseUrl: 'https://a.example.com/prod#x' }], /query or a fragment/],
    ['no stage', [{ id: 'eu1', baseUrl: 'https://a.example.com/' }], /has no path/],
    ['an odd path', [{ id: 'eu1', baseUrl: 'https://a.example.com/pro%22d' }], /not plain segments/],
    ['an IPv6 host', [{ id: 'eu1', baseUrl: 'https://[::1]/prod' }], /no DNS name/],
  ])('refuses %s, naming the shard and why', (_what, shards, why) => {
    expect(() => buildEdgeFunction(shards)).toThrow(EdgeFunctionError);
    expect(() => buildEdgeFunction(shards)).toThrow(why);
  });

  it('refuses a list too large for CloudFront Functions', () => {
    const many = Array.from({ length: 120 }, (_, i) => ({
      id: `s${i}`,
      baseUrl: `https://abcdefghij${i}.execute-api.eu-west-1.amazonaws.com/production-stage`,
    }));

    expect(() => buildEdgeFunction(many)).toThrow(/bytes with 120 shards: CloudFront Functions take less than 10240/);
  });

  it('takes exactly the shard ids newKeyValue takes', () => {
    for (const id of ['a', 'eu1', 'abcdefghij12', 'abcdefghij123', 'EU1', 'eu-1', 'eu_1', '', ' eu1']) {
      const keyplanTakes = (() => {
        try {
          newKeyValue(id);
          return true;
        } catch {
          return false;
        }
      })();
      const edgeTakes = (() => {
        try {
          buildEdgeFunction([{ id, baseUrl: SHARDS[0]!.baseUrl }]);
          return true;
        } catch {
          return false;
        }
      })();

      expect({ id, edgeTakes }).toEqual({ id, edgeTakes: keyplanTakes });
    }
  });
});
