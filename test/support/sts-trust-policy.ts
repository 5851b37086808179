import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The trust policies of shard roles, in front of the emulator's STS: moto lets anyone assume any
 * role with any external id, AWS does not. AssumeRole of a role named in `externalIds` succeeds
 * only with that role's external id; a wrong or missing one is refused as STS refuses it (403
 * AccessDenied, in the query protocol's XML), below the SDK. Every other request is forwarded to
 * the emulator unchanged. Point AWS_ENDPOINT_URL_STS at `endpoint`.
 */
export interface StsTrustPolicy {
  endpoint: string;
  /** AssumeRole calls refused so far, by role ARN. */
  refused: Record<string, number>;
  /** AssumeRole calls of a role in `externalIds` let through to the emulator, by role ARN. */
  allowed: Record<string, number>;
  stop(): Promise<void>;
}

export async function startStsTrustPolicy(options: {
  target: string;
  externalIds: Readonly<Record<string, string>>;
}): Promise<StsTrustPolicy> {
  const target = new URL(options.target);
  const refused: Record<string, number> = {};
  const allowed: Record<string, number> = {};

  const server = createServer((incoming, outgoing) => {
    void readBody(incoming).then((body) => {
      const form = new URLSearchParams(body.toString('utf8'));
      const roleArn = form.get('RoleArn') ?? '';
      if (form.get('Action') === 'AssumeRole' && Object.hasOwn(options.externalIds, roleArn)) {
        if (form.get('ExternalId') !== options.externalIds[roleArn]) {
          refused[roleArn] = (refused[roleArn] ?? 0) + 1;
          outgoing.writeHead(403, { 'content-type': 'text/xml' });
          outgoing.end(accessDenied(roleArn));
          return;
        }
        allowed[roleArn] = (allowed[roleArn] ?? 0) + 1;
      }
      const forwarded = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: incoming.method,
          path: incoming.url,
          headers: { ...incoming.headers, host: target.host },
        },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forwarded.on('error', () => {
        outgoing.writeHead(502);
        outgoing.end();
      });
      forwarded.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    refused,
    allowed,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

async function readBody(incoming: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const accessDenied = (roleArn: string) =>
  '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>' +
  '<Code>AccessDenied</Code>' +
  `<Message>User: arn:aws:iam::123456789012:user/keyplan is not authorized to perform: sts:AssumeRole on resource: ${roleArn}</Message>` +
  `</Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
