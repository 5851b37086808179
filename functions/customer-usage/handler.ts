import { loadConfig } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { createUsageDeps } from '../../shared/provisioning/compose';
import { customerUsageRoutes } from './routes';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const deps = createUsageDeps(loadConfig());

export const handler = httpHandler(customerUsageRoutes(deps));
