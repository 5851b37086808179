import { httpHandler } from '../../shared/http/handler';
import { composeRevokeCustomer } from './composition';

// Cold start: the configuration, this function's clients and adapters, once per container.
export const handler = httpHandler(composeRevokeCustomer());
