import { NotFoundError } from '../errors';
import type { Route } from './handler';

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A method and a resource as serverless.yml declares the http event: `GET /registrations/{id}`. */
export type RouteKey = `${HttpMethod} /${string}`;

/**
 * One function's routes as data, keyed by method and resource. It dispatches on `resource`, the
 * template API Gateway has already matched, not on `path`, which also carries a custom domain's
 * base path: matching the path again could only disagree with API Gateway. (@middy/http-router and
 * Powertools' Router match the path; that is why keyplan has these few lines instead.) A method or
 * resource not in the table answers 404 through the shared problem+json mapping; deployed, API
 * Gateway refuses those before the function runs.
 *
 * @throws NotFoundError for a method and resource the table does not hold
 */
export function router(routes: Record<RouteKey, Route>): Route {
  const table = new Map<string, Route>(Object.entries(routes));
  return async (event) => {
    const key = `${event.httpMethod} ${event.resource}`;
    const route = table.get(key);
    if (!route) throw new NotFoundError(`no route ${key}`);
    return route(event);
  };
}
