import { loadConfig } from '../../shared/config';
import { httpHandler } from '../../shared/http/handler';
import { createEnqueueDeps } from '../../shared/provisioning/compose';
import { registerRoutes } from './routes';

// Composition root: configuration and AWS clients are built once per container, at cold start.
const deps = createEnqueueDeps(loadConfig());

export const handler = httpHandler(registerRoutes(deps));
