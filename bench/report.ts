import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus, platform, release, arch, totalmem } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './child';
import type { Figure } from './stats';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** The emulator the figures were measured against. */
  moto: string;
  commit: string;
}

export function machine(): Machine {
  const processors = cpus();
  return {
    cpu: processors[0]?.model.trim() ?? 'unknown',
    cores: processors.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    moto: motoVersion(),
    commit: gitCommit(),
  };
}

function motoVersion(): string {
  try {
    const lib = join(repoRoot, '.keyplan', 'venv', 'lib');
    for (const python of readdirSync(lib)) {
      const dist = readdirSync(join(lib, python, 'site-packages')).find((name) => /^moto-.*\.dist-info$/.test(name));
      if (dist) return dist.replace(/^moto-/, '').replace(/\.dist-info$/, '');
    }
  } catch {
    // No venv where expected: the version is unknown, the figures are not.
  }
  return 'unknown';
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: repoRoot, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} (uncommitted changes)` : head;
  } catch {
    return 'unknown';
  }
}

/** A number as the table shows it: grouped thousands, at most `digits` decimals, no trailing zeros. */
export function formatNumber(value: number | null, digits = 2): string {
  if (value === null) return '—';
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

const UNITLESS = new Set(['calls', 'count']);

/** The table as Markdown, so the README can show it as printed. */
export function formatTable(figures: readonly Figure[]): string {
  // Counts go bare: the label says what is counted.
  const withUnit = (value: number, unit: string) => (UNITLESS.has(unit) ? formatNumber(value) : `${formatNumber(value)} ${unit}`);
  const rows = figures.map((f) => [
    String(f.group),
    f.label,
    withUnit(f.value, f.unit),
    f.baseline === null ? '—' : withUnit(f.baseline, f.unit),
    f.ratio === null ? '—' : formatNumber(f.ratio, 3),
    f.target,
    f.pass === null ? '—' : f.pass ? 'pass' : 'FAIL',
  ]);
  const header = ['#', 'figure', 'value', 'baseline', 'ratio', 'target', 'pass'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
