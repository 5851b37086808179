import { loadConfig } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { createRotationDeps } from '../../shared/provisioning/compose';
import { rotateCustomerRoutes } from './routes';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const deps = createRotationDeps(loadConfig());

export const handler = httpHandler(rotateCustomerRoutes(deps));
