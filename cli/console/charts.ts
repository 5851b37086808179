import type { DueDay } from '../../shared/console/key-counts';
import type { UsagePerDay } from '../../shared/console/customer-page';
import type { CustomerKey } from '../../shared/core/model';
import { attrs, html, type Html } from './html';

/*
 * The charts, drawn here as inline SVG: a few rectangles and arcs each, with the numbers on data
 * attributes (the browser tests read them) and in a <title> (a tooltip for people).
 */

const round = (n: number) => Math.round(n * 10) / 10;

/** A half-circle gauge of `used` against `ceiling`, with the high-water mark as a tick. */
export function gauge(options: { used: number; ceiling: number; highWater?: number | undefined; label: string }): Html {
  const { used, ceiling, highWater } = options;
  const share = ceiling > 0 ? Math.min(1, used / ceiling) : 0;
  const point = (fraction: number, radius: number) => {
    const angle = Math.PI * (1 - fraction);
    return `${round(100 + radius * Math.cos(angle))} ${round(100 - radius * Math.sin(angle))}`;
  };
  const arc = (to: number) => `M ${point(0, 80)} A 80 80 0 0 1 ${point(to, 80)}`;
  const color = share >= 0.9 ? '#c62828' : share >= 0.8 ? '#ef6c00' : '#2e7d32';
  const mark = highWater !== undefined && ceiling > 0 ? Math.min(1, highWater / ceiling) : undefined;
  return html`<svg viewBox="0 0 200 120" width="220" height="132" role="img" aria-label="${options.label}">
<title>${options.label}</title>
<path d="${arc(1)}" fill="none" stroke="#e0e0e0" stroke-width="18"/>
${share > 0 ? html`<path d="${arc(share)}" fill="none" stroke="${color}" stroke-width="18"/>` : ''}
${mark !== undefined ? html`<line x1="${point(mark, 68).split(' ')[0]}" y1="${point(mark, 68).split(' ')[1]}" x2="${point(mark, 92).split(' ')[0]}" y2="${point(mark, 92).split(' ')[1]}" stroke="#333" stroke-width="2"/>` : ''}
<text x="100" y="92" text-anchor="middle" font-size="20" font-weight="bold">${used.toLocaleString('en-US')}</text>
<text x="100" y="112" text-anchor="middle" font-size="11">of ${ceiling.toLocaleString('en-US')} keys (${round(share * 100)}%)</text>
</svg>`;
}

const CHART = { width: 640, height: 160, top: 12, bottom: 22, left: 34 };

/** Vertical bars of one value per day, with a scale of the largest and each fifth day named. */
function dayBars(days: readonly { day: string; total: number }[], bar: (day: number, x: number, width: number, y: (n: number) => number) => Html, label: string): Html {
  const max = Math.max(1, ...days.map((d) => d.total));
  const plot = CHART.height - CHART.top - CHART.bottom;
  const step = (CHART.width - CHART.left) / Math.max(1, days.length);
  const y = (n: number) => round((n / max) * plot);
  return html`<svg viewBox="0 0 ${CHART.width} ${CHART.height}" width="${CHART.width}" style="max-width:100%;height:auto" role="img" aria-label="${label}">
<title>${label}</title>
<line x1="${CHART.left}" y1="${CHART.height - CHART.bottom}" x2="${CHART.width}" y2="${CHART.height - CHART.bottom}" stroke="#999"/>
<text x="${CHART.left - 4}" y="${CHART.top + 4}" text-anchor="end" font-size="10">${max}</text>
<text x="${CHART.left - 4}" y="${CHART.height - CHART.bottom}" text-anchor="end" font-size="10">0</text>
${days.map((d, i) => bar(i, round(CHART.left + i * step + 1), round(Math.max(1, step - 2)), y))}
${days.map((d, i) => (i % 5 === 0 ? html`<text x="${round(CHART.left + i * step)}" y="${CHART.height - 6}" font-size="10">${d.day.slice(5)}</text>` : ''))}
</svg>`;
}

const baseline = CHART.height - CHART.bottom;

/** Rotations and retirements due per day: one bar per day, retirements stacked on rotations. */
export function dueChart(days: readonly DueDay[]): Html {
  const totals = days.map((d) => ({ day: d.day, total: d.rotations + d.retirements }));
  return dayBars(
    totals,
    (i, x, width, y) => {
      const d = days[i]!;
      const all = y(d.rotations + d.retirements);
      const retiring = y(d.retirements);
      return html`<g><rect${attrs({ 'data-day': d.day, 'data-rotations': d.rotations, 'data-retirements': d.retirements })} x="${x}" y="${round(baseline - all)}" width="${width}" height="${all}" fill="#1565c0"><title>${d.day}: ${d.rotations} rotations, ${d.retirements} retirements</title></rect>${
        d.retirements > 0 ? html`<rect x="${x}" y="${round(baseline - retiring)}" width="${width}" height="${retiring}" fill="#ef6c00" pointer-events="none"/>` : ''
      }</g>`;
    },
    'Rotations (blue) and retirements (orange) due per day',
  );
}

/** Requests per day of the customer's live keys. */
export function usageChart(days: readonly UsagePerDay[]): Html {
  return dayBars(
    days.map((d) => ({ day: d.day, total: d.used })),
    (i, x, width, y) => {
      const d = days[i]!;
      const h = y(d.used);
      return html`<rect${attrs({ 'data-day': d.day, 'data-used': d.used })} x="${x}" y="${round(baseline - h)}" width="${width}" height="${h}" fill="#6a1b9a"><title>${d.day}: ${d.used} requests</title></rect>`;
    },
    'Requests per day',
  );
}

const STATE_COLORS: Readonly<Record<string, string>> = {
  ACTIVE: '#2e7d32',
  RETIRING: '#ef6c00',
  DISABLED: '#757575',
  DELETED: '#bdbdbd',
  ORPHANED: '#c62828',
  MISSING: '#c62828',
};

/**
 * One key's life on a common time axis: made at createdAt, live until it stops (retireAt) or is
 * due for rotation (rotateAt), with a tick for now.
 */
export function keyLine(key: CustomerKey, axis: { from: number; to: number; now: number }): Html {
  const width = 480;
  const x = (iso: string | undefined) => {
    const t = iso ? Date.parse(iso) : NaN;
    if (Number.isNaN(t)) return undefined;
    return round(((t - axis.from) / Math.max(1, axis.to - axis.from)) * width);
  };
  const start = x(key.createdAt) ?? 0;
  const end = x(key.retireAt) ?? x(key.rotateAt) ?? x(new Date(axis.now).toISOString()) ?? width;
  const now = x(new Date(axis.now).toISOString()) ?? 0;
  const rotate = key.state === 'ACTIVE' ? x(key.rotateAt) : undefined;
  return html`<svg viewBox="0 0 ${width} 24" width="${width}" height="24" role="img" aria-label="lifecycle of key ${key.keyId}">
<rect x="0" y="10" width="${width}" height="4" fill="#eeeeee"/>
<rect x="${start}" y="6" width="${Math.max(2, round(end - start))}" height="12" fill="${STATE_COLORS[key.state] ?? '#757575'}"><title>${key.keyId}: ${key.state}</title></rect>
${rotate !== undefined ? html`<line x1="${rotate}" y1="2" x2="${rotate}" y2="22" stroke="#1565c0" stroke-width="2"><title>rotates ${key.rotateAt}</title></line>` : ''}
<line x1="${now}" y1="0" x2="${now}" y2="24" stroke="#000" stroke-dasharray="2 2"><title>now</title></line>
</svg>`;
}
