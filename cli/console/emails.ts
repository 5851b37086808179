/** An email the local emulator kept (moto's SES backend), as the emails page lists it. */
export interface SentEmail {
  to: string[];
  subject: string;
  /** Holds the key value of a key email: the page masks it (html.ts maskKeyValues). */
  body: string;
}

interface MotoMessage {
  subject?: unknown;
  body?: unknown;
  destinations?: { ToAddresses?: unknown };
}

/**
 * The emails moto kept, newest first: its /moto-api/data.json lists SES's messages as
 * `ses.Message` (as test/support/emulator-probe.ts and `npm start`'s banner read them). Only the
 * local stack has them; AWS keeps no sent mail.
 */
export async function emulatorEmails(endpoint: string, limit = 200): Promise<SentEmail[]> {
  const response = await fetch(new URL('/moto-api/data.json', endpoint), { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`the emulator answered ${response.status} for its data`);
  const data = (await response.json()) as { ses?: { Message?: MotoMessage[] } };
  return (data.ses?.Message ?? [])
    .map((message) => ({
      to: Array.isArray(message.destinations?.ToAddresses) ? message.destinations.ToAddresses.map(String) : [],
      subject: String(message.subject ?? ''),
      body: String(message.body ?? ''),
    }))
    .reverse()
    .slice(0, limit);
}
