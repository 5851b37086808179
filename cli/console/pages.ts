import type { CustomerPage } from '../../shared/console/customer-page';
import type { Overview } from '../../shared/console/overview';
import type { RecordedEvent } from '../../shared/core/events';
import { DAY_MS } from '../../shared/core/model';
import { dueChart, gauge, keyLine, usageChart } from './charts';
import type { SentEmail } from './emails';
import { attrs, html, type Html, maskKeyplanKeyValues, maskKeyValues } from './html';

/** What every page knows: the session token (for forms) and whether the stack is local. */
export interface PageContext {
  token: string;
  local: boolean;
  /** The stack, as `keyplan` says "using ..." */
  stack: string;
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#212121;background:#fafafa}
header{background:#263238;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none;font-weight:600}header small{color:#b0bec5}
main{padding:12px 16px;max-width:1100px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:8px 12px;margin:10px 0}
h1{font-size:20px;margin:6px 0}h2{font-size:16px;margin:4px 0 8px}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#555}.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;gap:12px;flex-wrap:wrap}.grid>section{flex:1;min-width:260px}
.flash{padding:8px 12px;border-radius:6px;margin:10px 0}.ok{background:#e8f5e9}.error{background:#ffebee}
form.inline{display:inline-flex;gap:6px;align-items:center;margin:4px 12px 4px 0}
pre{white-space:pre-wrap;background:#f5f5f5;padding:6px;max-height:220px;overflow:auto}
.muted{color:#757575}ol.timeline{list-style:none;padding:0}ol.timeline li{margin:6px 0}
`;

/** A whole page; the last guard masks anything of a keyplan key value's shape that got this far. */
export function layout(title: string, body: Html, context: PageContext): string {
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · keyplan console</title><style>${STYLE}</style></head>
<body><header><a href="/">keyplan console</a><a href="/">Overview</a>${context.local ? html`<a href="/emails">Emails</a>` : ''}
<form method="get" action="/customers" data-testid="customer-search" class="inline"><input name="id" placeholder="customer id" aria-label="customer id" required maxlength="128"><button>Find</button></form>
<small>${context.stack}</small></header>
<main>${body}</main></body></html>`;
  return maskKeyplanKeyValues(page.text);
}

const time = (iso: string | undefined) => (iso ? `${iso.slice(0, 16).replace('T', ' ')}Z` : '–');
const day = (iso: string | undefined) => (iso ? iso.slice(0, 10) : '–');
const n = (value: number) => value.toLocaleString('en-US');

export function overviewPage(overview: Overview, context: PageContext): string {
  const states = Object.entries(overview.keysByState) as [string, number][];
  const totalKeys = states.reduce((sum, [, count]) => sum + count, 0);
  const next30 = overview.due.reduce((sum, d) => ({ rotations: sum.rotations + d.rotations, retirements: sum.retirements + d.retirements }), {
    rotations: 0,
    retirements: 0,
  });
  const body = html`<h1>Overview</h1><p class="muted">as of ${time(overview.at)}; keys counted at ${overview.keysAsOf.slice(11, 19)}Z (the count is kept for up to 30 s, and counted again after an action here)</p>
<div class="grid">
${overview.shards.map(
  (shard) => html`<section><h2>Keys in ${overview.shards.length > 1 ? `shard ${shard.shard}` : 'the account'}</h2>
<figure data-testid="key-gauge"${attrs({ 'data-shard': shard.shard, 'data-used': shard.used, 'data-ceiling': shard.keyCeiling, 'data-state': shard.state })} style="margin:0">
${gauge({ used: shard.used, ceiling: shard.keyCeiling, highWater: shard.highWaterKeys, label: `${shard.used} of ${shard.keyCeiling} keys` })}
<figcaption class="muted">${shard.state}; keys in the table ${n(shard.tableKeys)}${shard.highWaterKeys !== undefined ? html`, placed ${n(shard.placedKeys)} of ${n(shard.highWaterKeys)} (high-water mark)` : ''}${
    shard.inventoryKeys !== undefined ? html`, API Gateway ${n(shard.inventoryKeys)} at ${time(shard.inventoryAt)} (reconciler)` : ''
  }</figcaption></figure></section>`,
)}
<section><h2>Keys by state</h2>
<table data-testid="keys-by-state"${attrs({ 'data-total': totalKeys, 'data-as-of': overview.keysAsOf })}><tbody>
${states.map(([state, count]) => html`<tr${attrs({ 'data-state': state, 'data-count': count })}><th>${state}</th><td class="num">${n(count)}</td></tr>`)}
<tr><th>in all</th><td class="num">${n(totalKeys)}</td></tr></tbody></table>
<p class="muted">Keys that still exist in API Gateway; deleted keys are not counted.</p></section>
<section data-testid="queue-depth"${attrs({ 'data-queue': overview.queues.queue, 'data-dlq': overview.queues.dlq })}><h2>Provisioning queue</h2>
<table><tr><th>waiting</th><td class="num">${n(overview.queues.queue)}</td></tr>
<tr><th>dead-letter queue</th><td class="num">${n(overview.queues.dlq)}</td></tr></table>
<p class="muted">${overview.queues.queues} queue${overview.queues.queues === 1 ? '' : 's'}${overview.queues.dlq > 0 ? html`; <strong>messages in a DLQ: those customers have no key yet</strong> (docs/deploy.md)` : ''}</p></section>
</div>
<section><h2>Due in the next ${overview.due.length} days</h2>
<div data-testid="due-chart"${attrs({ 'data-rotations': next30.rotations, 'data-retirements': next30.retirements, 'data-overdue-rotations': overview.overdue.rotations, 'data-overdue-retirements': overview.overdue.retirements })}>
${dueChart(overview.due)}</div>
<p class="muted"><span style="color:#1565c0">■</span> ${n(next30.rotations)} rotations, <span style="color:#ef6c00">■</span> ${n(next30.retirements)} retirements; today's bar includes the overdue (${n(overview.overdue.rotations)} rotations, ${n(overview.overdue.retirements)} retirements).</p></section>
<section data-testid="stalled-registrations"${attrs({ 'data-count': overview.stalled.length })}><h2>Stalled registrations</h2>
${overview.stalled.length === 0 ? html`<p class="muted">None: the resume sweep has nothing to take.</p>` : html`<table><thead><tr><th>registration</th><th>customer</th><th>state</th><th>resumes</th><th>the sweep will</th><th>last attempt</th></tr></thead><tbody>
${overview.stalled.map((r) => html`<tr${attrs({ 'data-registration-id': r.registrationId })}><td>${r.registrationId}</td><td>${customerLink(r.customerId)}</td><td>${r.state}</td><td class="num">${r.resumeAttempts}</td><td>${r.action}</td><td>${time(r.updatedAt)}</td></tr>`)}
</tbody></table>`}
<p class="muted">read at ${overview.stalledAsOf.slice(11, 19)}Z</p>
<h2>Interrupted operations</h2>
<div data-testid="interrupted-operations"${attrs({ 'data-count': overview.interrupted.length })}>
${overview.interrupted.length === 0 ? html`<p class="muted">None.</p>` : html`<table><tbody>${overview.interrupted.map((op) => html`<tr><td>${customerLink(op.customerId)}</td><td>${op.operation}</td><td>${op.keyId ?? ''}</td></tr>`)}</tbody></table>`}
</div></section>
<section data-testid="recent-failures"${attrs({ 'data-count': overview.failures.total })}><h2>Failed registrations</h2>
${overview.failures.failures.length === 0 ? html`<p class="muted">None kept.</p>` : html`<table><thead><tr><th>when</th><th>registration</th><th>customer</th><th>tier</th><th>reason</th></tr></thead><tbody>
${overview.failures.failures.map((f) => html`<tr${attrs({ 'data-registration-id': f.registrationId })}><td>${time(f.updatedAt)}</td><td>${f.registrationId}</td><td>${customerLink(f.customerId)}</td><td>${f.tier}</td><td>${f.failureReason ?? ''}</td></tr>`)}
</tbody></table>`}
<p class="muted">${n(overview.failures.total)} kept (for REGISTRATION_RETENTION_DAYS)${overview.failures.asOf ? html`, read ${time(overview.failures.asOf)}` : ''}.</p></section>`;
  return layout('Overview', body, context);
}

const customerLink = (customerId: string) => html`<a href="/customers/${encodeURIComponent(customerId)}">${customerId}</a>`;

export interface Flash {
  ok: boolean;
  message: string;
}

export function customerPage(page: CustomerPage, context: PageContext & { tiers: readonly string[]; flash?: Flash | undefined; now: Date }): string {
  const { profile } = page;
  const id = encodeURIComponent(profile.customerId);
  const action = (name: string) => `/customers/${id}/${name}`;
  const token = html`<input type="hidden" name="token" value="${context.token}">`;
  const times = page.keys.flatMap((k) => [k.createdAt, k.rotateAt, k.retireAt]).map((t) => (t ? Date.parse(t) : NaN)).filter((t) => !Number.isNaN(t));
  const now = context.now.getTime();
  const axis = { from: Math.min(now - DAY_MS, ...times), to: Math.max(now + DAY_MS, ...times), now };
  const body = html`${context.flash ? html`<div data-testid="flash" class="${`flash ${context.flash.ok ? 'ok' : 'error'}`}"${attrs({ 'data-outcome': context.flash.ok ? 'ok' : 'error' })}>${context.flash.message}</div>` : ''}
<h1>Customer ${profile.customerId}</h1>
<div class="grid"><section><h2>Profile</h2>
<table data-testid="customer-profile"${attrs({ 'data-customer-id': profile.customerId, 'data-tier': profile.tier, 'data-status': profile.status, 'data-registration-state': page.registration?.state })}>
<tr><th>email</th><td>${profile.email}</td></tr>
${profile.name ? html`<tr><th>name</th><td>${profile.name}</td></tr>` : ''}
<tr><th>tier</th><td>${profile.tier}</td></tr><tr><th>status</th><td>${profile.status}</td></tr>
<tr><th>shard</th><td>${profile.shard ?? 'home'}</td></tr>
<tr><th>registration</th><td>${profile.registrationId} (${page.registration?.state ?? 'gone'})${page.registration?.state === 'EMAIL_PENDING' ? html` <strong>email owed</strong>` : ''}</td></tr>
<tr><th>last emailed key</th><td>${profile.emailedKeyId ?? '–'}</td></tr>
<tr><th>registered</th><td>${time(profile.createdAt)}</td></tr>${profile.revokedAt ? html`<tr><th>revoked</th><td>${time(profile.revokedAt)}</td></tr>` : ''}
</table></section>
<section><h2>Tier history</h2>
<table data-testid="tier-history"${attrs({ 'data-count': profile.tierHistory.length })}><tbody>
${profile.tierHistory.length === 0 ? html`<tr><td class="muted">No change since registration.</td></tr>` : [...profile.tierHistory].reverse().map((change) => html`<tr${attrs({ 'data-from': change.from, 'data-to': change.to, 'data-at': change.at })}><td>${time(change.at)}</td><td>${change.from} → ${change.to}</td><td class="muted">${change.requestId ?? ''}</td></tr>`)}
</tbody></table></section></div>
<section><h2>Keys</h2>
<ol class="timeline" data-testid="key-timeline"${attrs({ 'data-from': new Date(axis.from).toISOString(), 'data-to': new Date(axis.to).toISOString() })}>
${page.keys.map((key) => html`<li${attrs({ 'data-key-id': key.keyId, 'data-state': key.state, 'data-created-at': key.createdAt, 'data-rotate-at': key.rotateAt, 'data-retire-at': key.retireAt })}>
<strong>${key.keyId}</strong> ${key.state}, generation ${key.generation}, tier ${key.tier}${key.fingerprint ? html`, fingerprint ${key.fingerprint}` : ''}${key.shard ? html`, shard ${key.shard}` : ''}<br>
${keyLine(key, axis)}<br><span class="muted">made ${day(key.createdAt)}${key.rotateAt && key.state === 'ACTIVE' ? html`, rotates ${day(key.rotateAt)}` : ''}${key.retireAt ? html`, stops ${day(key.retireAt)}` : ''}${key.successorKeyId ? html`, replaced by ${key.successorKeyId}` : ''}</span></li>`)}
</ol>${page.keys.length === 0 ? html`<p class="muted">No key.</p>` : ''}</section>
<section><h2>Usage per day (live keys, UTC)</h2>
<div data-testid="usage-chart"${attrs({ 'data-total': page.usage.days.reduce((sum, d) => sum + d.used, 0), 'data-unavailable': page.usage.unavailable })}>
${usageChart(page.usage.days)}</div>${page.usage.unavailable ? html`<p class="muted">Usage unavailable: ${page.usage.unavailable}</p>` : ''}</section>
<section><h2>Actions</h2>
<p class="muted">Each runs the same use case as the HTTP route and the <code>keyplan</code> command, under the customer's lease.</p>
<form method="post" action="${action('rotate')}" data-testid="action-rotate" class="inline">${token}
<label>grace days <input type="number" name="graceDays" min="0" max="365" placeholder="default" style="width:6em"></label><button>Rotate every ACTIVE key</button></form>
<form method="post" action="${action('tier')}" data-testid="action-change-tier" class="inline">${token}
<label>tier <select name="tier">${context.tiers.map((tier) => html`<option${attrs({ value: tier })}${tier === profile.tier ? html` selected` : ''}>${tier}</option>`)}</select></label><button>Change tier</button></form>
<form method="post" action="${action('revoke')}" data-testid="action-revoke" class="inline">${token}
<label><input type="checkbox" name="confirm" value="yes"> yes, disable every key now</label><button>Revoke</button></form>
<form method="post" action="${action('resend-email')}" data-testid="action-resend-email" class="inline">${token}
<button>Resend owed email</button>${page.registration?.state === 'EMAIL_PENDING' ? '' : html`<span class="muted">(nothing owed now)</span>`}</form>
</section>
<section><h2>Audit trail</h2>
<table data-testid="audit-trail"${attrs({ 'data-count': page.events.length })}><thead><tr><th>#</th><th>time</th><th>event</th><th>detail</th></tr></thead><tbody>
${page.events.map((event) => html`<tr${attrs({ 'data-sequence': event.sequence, 'data-type': event.type })}><td class="num">${event.sequence}</td><td>${time(event.time)}</td><td>${event.type}</td><td>${detailOf(event)}</td></tr>`)}
</tbody></table>${page.moreEvents ? html`<p class="muted">Older events: <code>keyplan history ${profile.customerId}</code></p>` : ''}</section>`;
  return layout(`Customer ${profile.customerId}`, body, context);
}

const detailOf = (event: RecordedEvent) =>
  Object.entries(event.detail)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}=${Array.isArray(value) ? value.join(',') : String(value)}`)
    .join(' ');

export function emailsPage(emails: readonly SentEmail[], context: PageContext): string {
  const body = html`<h1>Emails the emulator kept</h1>
<p class="muted">Newest first. Key values in a body are hidden: the emulator keeps them, the console never shows them.</p>
<table data-testid="emails"${attrs({ 'data-count': emails.length })}><thead><tr><th>to</th><th>subject</th><th>body</th></tr></thead><tbody>
${emails.map((email) => html`<tr data-testid="email"${attrs({ 'data-to': email.to.join(',') })}><td>${email.to.join(', ')}</td><td>${maskKeyValues(email.subject)}</td><td><details><summary>show</summary><pre>${maskKeyValues(email.body)}</pre></details></td></tr>`)}
</tbody></table>`;
  return layout('Emails', body, context);
}

/** A short page for refusals and errors: a status, one sentence, never a stack trace. */
export function messagePage(title: string, message: string, context?: PageContext): string {
  const body = html`<h1>${title}</h1><p data-testid="message">${message}</p>`;
  if (context) return layout(title, body, context);
  return maskKeyplanKeyValues(html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p data-testid="message">${message}</p></body></html>`.text);
}
