import type { ApiKeySecret } from '../api-key-secret';
import type { OutgoingEmail, PlanLimits } from './ports';

export const API_KEY_HEADER = 'x-api-key';

export interface KeyEmailInput {
  to: string;
  name?: string | undefined;
  tier: string;
  secret: ApiKeySecret;
  limits: PlanLimits;
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
  const text = [
    greeting,
    '',
    'Your API key is ready:',
    '',
    `    ${value}`,
    '',
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
