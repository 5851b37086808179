import type { ApiKeySecret } from '../api-key-secret';
import type { OutgoingEmail, PlanLimits } from './ports';

export const API_KEY_HEADER = 'x-api-key';

export interface KeyEmailInput {
  to: string;
  name?: string | undefined;
  tier: string;
  secret: ApiKeySecret;
  limits: PlanLimits;
  /** For a rotation: the key this one replaces and when that key stops working. */
  replaces?: { fingerprint: string | undefined; until: Date } | undefined;
}

/** The email that delivers a key: the only place a key value is put into words. */
export function buildKeyEmail(input: KeyEmailInput): OutgoingEmail {
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
    '<table>',
    ...facts.map(([label, fact]) => `<tr><th align="left">${escapeHtml(label)}</th><td>${escapeHtml(fact)}</td></tr>`),
    '</table>',
    '<p>Keep this key secret. If it leaks, ask for a new one.</p>',
    '</body></html>',
  ].join('\n');
  return { to: input.to, subject: 'Your API key', text, html };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A reminder that a rotated key stops working soon. It holds no key value. */
export function buildRetirementReminder(input: {
  to: string;
  fingerprint: string | undefined;
  until: Date;
}): OutgoingEmail {
  const line =
    `Your previous API key${input.fingerprint ? ` (fingerprint ${input.fingerprint})` : ''} stops working on ` +
    `${formatDate(input.until)}. Use the new key we sent you when it was rotated; if you cannot find it, ask for a new one.`;
  return {
    to: input.to,
    subject: 'Your previous API key stops working soon',
    text: ['Hello,', '', line].join('\n'),
    html: `<!doctype html><html><body><p>Hello,</p><p>${escapeHtml(line)}</p></body></html>`,
  };
}

function formatDate(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
