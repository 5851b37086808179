/**
 * HTML for the console, built only through `html`: every value put into a template is escaped
 * unless it is itself the output of `html` (or `raw`, for the fixed markup of the charts), so no
 * customer id, email, tier or event detail can become markup.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type Interpolated = Html | string | number | boolean | null | undefined | readonly Interpolated[];

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** The one escape of the console: text and attribute values alike (always quoted with "). */
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

function render(value: Interpolated): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Interpolated[]): Html {
  let out = strings[0] ?? '';
  values.forEach((value, i) => (out += render(value) + (strings[i + 1] ?? '')));
  return new Html(out);
}

/** Markup the console itself wrote (numbers and fixed names only); never for data. */
export const raw = (text: string): Html => new Html(text);

/** Attributes from a record, each value escaped; undefined values are left out. */
export function attrs(values: Readonly<Record<string, string | number | undefined>>): Html {
  return new Html(
    Object.entries(values)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => ` ${name}="${escapeHtml(String(value))}"`)
      .join(''),
  );
}

/** keyplan's key values (core/key-value.ts), anywhere in a text. */
const KEYPLAN_KEY_VALUE = /kp_[a-z0-9]{1,12}_[0-9A-Za-z]{20,}/g;
/** Values API Gateway generates itself (40 letters and digits) and any other long token. */
const LONG_TOKEN = /\b[0-9A-Za-z]{30,}\b/g;

/**
 * A text with anything of a key value's shape masked: keyplan's own values, and any run of 30 or
 * more letters and digits (API Gateway's generated values). Ids, fingerprints and dates are shorter.
 */
export const maskKeyValues = (text: string): string =>
  text.replace(KEYPLAN_KEY_VALUE, 'kp_•••• (key value hidden)').replace(LONG_TOKEN, '•••• (hidden)');

/** keyplan's key value shape only: the last guard over every page the console sends. */
export const maskKeyplanKeyValues = (text: string): string => text.replace(KEYPLAN_KEY_VALUE, 'kp_•••• (key value hidden)');
