import { httpHandler } from '../../shared/http/handler';
import { composeCustomerReads } from './composition';

// Cold start: the configuration, this function's client and adapters, once per container.
export const handler = httpHandler(composeCustomerReads());
