import { ApiKeyGateway } from '../aws/api-key-gateway';
import { type AwsClients, createAwsClients } from '../aws/clients';
import { RegistrationTable } from '../aws/registration-table';
import { SesMailer } from '../aws/ses-mailer';
import type { Config } from '../config';
import type { ProvisioningDeps } from './provision-key';

/** Wires the saga's adapters to AWS clients; handlers call this once, at cold start. */
export function createProvisioningDeps(config: Config, clients: AwsClients = createAwsClients()): ProvisioningDeps {
  return {
    store: new RegistrationTable({
      client: clients.dynamo,
      tableName: config.tableName,
      retentionDays: config.registrationRetentionDays,
    }),
    keys: new ApiKeyGateway({ client: clients.apiGateway, singleAttemptClient: clients.apiGatewaySingleAttempt }),
    mailer: new SesMailer({
      client: clients.ses,
      sender: config.senderEmail,
      configurationSet: config.sesConfigurationSet,
    }),
    settings: {
      tierMap: config.tierMap,
      keyNamePrefix: config.keyNamePrefix,
      rotationDays: config.rotationDays,
      leaseSeconds: config.leaseSeconds,
    },
  };
}

