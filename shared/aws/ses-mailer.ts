import { type SESClient, SendEmailCommand } from '@aws-sdk/client-ses';
import type { Mailer, OutgoingEmail } from '../core/ports';

export interface SesMailerOptions {
  client: SESClient;
  sender: string;
  configurationSet?: string | undefined;
}

export class SesMailer implements Mailer {
  readonly #options: SesMailerOptions;

  constructor(options: SesMailerOptions) {
    this.#options = options;
  }

  async send(email: OutgoingEmail): Promise<void> {
    // SendEmail takes the recipient and subject as structured fields, not raw headers, and both
    // were validated (no CR/LF), so nothing in them can add a header.
    await this.#options.client.send(
      new SendEmailCommand({
        Source: this.#options.sender,
        Destination: { ToAddresses: [email.to] },
        Message: {
          Subject: { Data: email.subject, Charset: 'UTF-8' },
          Body: {
            Text: { Data: email.text, Charset: 'UTF-8' },
            Html: { Data: email.html, Charset: 'UTF-8' },
          },
        },
        ConfigurationSetName: this.#options.configurationSet,
      }),
    );
  }
}
