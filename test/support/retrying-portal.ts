import type { APIGatewayProxyResult } from 'aws-lambda';

/**
 * A signup portal as a well-behaved client of keyplan's HTTP contract: it repeats a request that
 * may succeed later (5xx, 409 registration-in-progress or customer-busy), waiting what
 * Retry-After says, with bounded attempts. The request is the same each time, so a registration
 * keeps its Idempotency-Key.
 */
export interface PortalPolicy {
  maxAttempts: number;
  /** The longest wait between two attempts, whatever Retry-After says. */
  maxWaitMs: number;
  /** A successful answer that still asks for a repeat (e.g. a registration left EMAIL_PENDING). */
  repeatIf?: (response: APIGatewayProxyResult) => boolean;
}

export interface PortalResult {
  /** The last answer. */
  response: APIGatewayProxyResult;
  attempts: number;
  /** Every attempt was answered with something worth repeating; the portal stopped trying. */
  gaveUp: boolean;
}

/** Problems a repeat can get past; anything else 4xx is final. */
const TRANSIENT_CONFLICTS = new Set(['registration-in-progress', 'customer-busy']);
/** 5xx answers that are final: a repeat answers the same. */
const FINAL_SERVER_PROBLEMS = new Set(['provisioning-failed', 'usage-unavailable']);

export function problemCode(response: APIGatewayProxyResult): string | undefined {
  if (!String(response.headers?.['content-type'] ?? '').includes('problem+json')) return undefined;
  try {
    return String((JSON.parse(response.body) as { type?: string }).type ?? '').split(':').pop();
  } catch {
    return undefined;
  }
}

export function isWorthRepeating(response: APIGatewayProxyResult): boolean {
  const code = problemCode(response) ?? '';
  if (response.statusCode === 409) return TRANSIENT_CONFLICTS.has(code);
  return response.statusCode >= 500 && !FINAL_SERVER_PROBLEMS.has(code);
}

export async function sendAsPortal(
  send: () => Promise<APIGatewayProxyResult>,
  policy: PortalPolicy,
): Promise<PortalResult> {
  for (let attempt = 1; ; attempt++) {
    const response = await send();
    const repeat = isWorthRepeating(response) || (response.statusCode < 300 && (policy.repeatIf?.(response) ?? false));
    if (!repeat) return { response, attempts: attempt, gaveUp: false };
    if (attempt >= policy.maxAttempts) return { response, attempts: attempt, gaveUp: true };
    const retryAfterMs = Number(response.headers?.['retry-after'] ?? 0) * 1000;
    const backoffMs = Math.min(2_000, 100 * 2 ** (attempt - 1));
    // Jitter keeps portals that failed together from retrying together.
    const waitMs = Math.min(policy.maxWaitMs, Math.max(retryAfterMs, backoffMs)) * (0.75 + Math.random() / 2);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
