import { loadConfig } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { createCustomerDeps } from '../../shared/provisioning/compose';
import { revokeCustomerRoutes } from './routes';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const deps = createCustomerDeps(loadConfig());

export const handler = httpHandler(revokeCustomerRoutes(deps));
