import type { ApiKeySecret } from '../api-key-secret';
import type { OutgoingEmail, PlanLimits } from './ports';
import { EMAIL_PATTERN } from './schemas';

export const API_KEY_HEADER = 'x-api-key';

export interface KeyEmailInput {
  to: string;
  name?: string | undefined;
  tier: string;
  secret: ApiKeySecret;
  limits: PlanLimits;
  /** Where the customer's shard serves the API (a key works only there). */
  baseUrl?: string | undefined;
  /** For a rotation: the key this one replaces and when that key stops working. */
  replaces?: { fingerprint: string | undefined; until: Date } | undefined;
}

const PLAIN_ADDRESS = new RegExp(EMAIL_PATTERN, 'u');

/**
 * The recipient is the one header customer input reaches (the subjects are constants; SES's
 * SendEmail takes it as a structured field, not a raw header). Registration validates it; this
 * check keeps a malformed address that reached the table some other way from ever being sent to.
 */
function recipient(to: string): string {
  if (to.length > 254 || !PLAIN_ADDRESS.test(to)) throw new Error('the recipient is not one plain email address');
  return to;
}

/**
 * The email that delivers a key: the only place a key value is put into words. The customer's
 * name goes into the body only (escaped in HTML), never into a header.
 * @throws Error when `to` is not one plain address (the caller treats it as a failed email)
 */
export function buildKeyEmail(input: KeyEmailInput): OutgoingEmail {
  const to = recipient(input.to);
  const value = input.secret.reveal();
  const facts: [string, string][] = [
    ['Tier', input.tier],
    ['Rate limit', input.limits.rateLimit === undefined ? 'none' : `${input.limits.rateLimit} requests per second`],
    ['Burst limit', input.limits.burstLimit === undefined ? 'none' : `${input.limits.burstLimit} requests`],
    [
      'Quota',
      input.limits.quotaLimit === undefined
        ? 'none'
        : `${input.limits.quotaLimit} requests per ${(input.limits.quotaPeriod ?? 'period').toLowerCase()}`,
    ],
  ];
  const greeting = input.name ? `Hello ${input.name},` : 'Hello,';
  const replacement = input.replaces
    ? [
        `This key replaces your current key${input.replaces.fingerprint ? ` (fingerprint ${input.replaces.fingerprint})` : ''}, ` +
          `which stops working on ${formatDate(input.replaces.until)}. Switch to the new key before then.`,
      ]
    : [];
  const text = [
    greeting,
    '',
    'Your API key is ready:',
    '',
    `    ${value}`,
    '',
    ...replacement.flatMap((line) => [line, '']),
    `Send it in the ${API_KEY_HEADER} header of every request:`,
    `    ${API_KEY_HEADER}: ${value}`,
    '',
    ...(input.baseUrl ? [`Call the API at ${input.baseUrl}`, ''] : []),
    ...facts.map(([label, fact]) => `${label}: ${fact}`),
    '',
    'Keep this key secret. If it leaks, ask for a new one.',
  ].join('\n');
  const html = [
    '<!doctype html><html><body>',
    `<p>${escapeHtml(greeting)}</p>`,
    '<p>Your API key is ready:</p>',
    `<p><code>${escapeHtml(value)}</code></p>`,
    ...replacement.map((line) => `<p><strong>${escapeHtml(line)}</strong></p>`),
    `<p>Send it in the <code>${API_KEY_HEADER}</code> header of every request.</p>`,
    ...(input.baseUrl ? [`<p>Call the API at <code>${escapeHtml(input.baseUrl)}</code></p>`] : []),
    '<table>',
    ...facts.map(([label, fact]) => `<tr><th align="left">${escapeHtml(label)}</th><td>${escapeHtml(fact)}</td></tr>`),
    '</table>',
    '<p>Keep this key secret. If it leaks, ask for a new one.</p>',
    '</body></html>',
  ].join('\n');
  return { to, subject: 'Your API key', text, html };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A reminder that a rotated key stops working soon. It holds no key value.
 * @throws Error when `to` is not one plain address
 */
export function buildRetirementReminder(input: {
  to: string;
  fingerprint: string | undefined;
  until: Date;
}): OutgoingEmail {
  const to = recipient(input.to);
  const line =
    `Your previous API key${input.fingerprint ? ` (fingerprint ${input.fingerprint})` : ''} stops working on ` +
    `${formatDate(input.until)}. Use the new key we sent you when it was rotated; if you cannot find it, ask for a new one.`;
  return {
    to,
    subject: 'Your previous API key stops working soon',
    text: ['Hello,', '', line].join('\n'),
    html: `<!doctype html><html><body><p>Hello,</p><p>${escapeHtml(line)}</p></body></html>`,
  };
}

function formatDate(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
