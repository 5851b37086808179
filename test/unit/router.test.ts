import { singleShard } from '../../shared/core/shards';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { NotFoundError, ValidationError } from '../../shared/errors';
import type { Route } from '../../shared/http/handler';
import { httpHandler } from '../../shared/http/handler';
import { jsonResponse } from '../../shared/http/problem';
import { router } from '../../shared/http/router';
import { apiEvent, lambdaContext } from '../support/api-events';

const answering = (name: string) => vi.fn(async (_event: APIGatewayProxyEvent) => jsonResponse(200, { route: name }));

describe('router', () => {
  function things() {
    const routes = { get: answering('get'), remove: answering('remove'), list: answering('list') };
    const route = router({
      'GET /things/{id}': routes.get,
      'DELETE /things/{id}': routes.remove,
      'GET /things': routes.list,
    });
    return { routes, route };
  }

  it('hands the event to the route of its method and resource', async () => {
    // Prepare
    const { routes, route } = things();
    const event = apiEvent({ method: 'DELETE', resource: '/things/{id}', pathParameters: { id: 't-1' } });

    // Act
    const response = await route(event);

    // Assess
    expect(JSON.parse(response.body)).toEqual({ route: 'remove' });
    expect(routes.remove).toHaveBeenCalledExactlyOnceWith(event);
    expect(routes.get).not.toHaveBeenCalled();
  });

  it('matches the resource API Gateway matched, not the path, which carries a custom domain’s base path', async () => {
    // Prepare
    const { routes, route } = things();
    const event = { ...apiEvent({ method: 'GET', resource: '/things/{id}', pathParameters: { id: 't-1' } }), path: '/v1/things/t-1' };

    // Act
    const response = await route(event);

    // Assess
    expect(response.statusCode).toBe(200);
    expect(routes.get).toHaveBeenCalledExactlyOnceWith(event);
  });

  it.each([
    ['a method the resource does not serve', 'PUT', '/things/{id}'],
    ['a resource the function does not serve', 'GET', '/nowhere'],
  ])('refuses %s with NotFoundError and calls no route', async (_, method, resource) => {
    // Prepare
    const { routes, route } = things();

    // Act
    const refusal = route(apiEvent({ method, resource }));

    // Assess
    await expect(refusal).rejects.toBeInstanceOf(NotFoundError);
    await expect(refusal).rejects.toThrow(`no route ${method} ${resource}`);
    for (const called of Object.values(routes)) expect(called).not.toHaveBeenCalled();
  });

  it('answers an unknown route with 404 problem+json through the shared handler, as the hand-written guards did', async () => {
    // Prepare
    const { route } = things();

    // Act
    const response = await httpHandler(route)(apiEvent({ method: 'PUT', resource: '/things/{id}' }), lambdaContext());

    // Assess
    expect(response.statusCode).toBe(404);
    expect(response.headers).toEqual({ 'content-type': 'application/problem+json' });
    expect(JSON.parse(response.body)).toEqual({
      type: 'urn:keyplan:problem:not-found',
      title: 'Not found',
      status: 404,
      detail: 'no route PUT /things/{id}',
    });
  });

  it('lets a route’s own error through unchanged, for the shared handler to map', async () => {
    // Prepare
    const refusal = new ValidationError('id', 'id: invalid');
    const route = router({
      'GET /things/{id}': async () => {
        throw refusal;
      },
    });

    // Act & Assess
    await expect(route(apiEvent({ method: 'GET', resource: '/things/{id}' }))).rejects.toBe(refusal);
  });
});

/**
 * Every http event serverless.yml declares must reach a route of its function: a route key that
 * differs from the event (a typo, a renamed path parameter) would answer 404 to every request.
 */
describe('the routes of the HTTP functions', () => {
  const service = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'), { logLevel: 'silent' }) as {
    functions: Record<string, { handler: string; events?: { http?: { method: string; path: string } }[] }>;
  };
  const declared = Object.values(service.functions).flatMap(({ handler, events = [] }) =>
    events.flatMap(({ http }) =>
      http ? [[`${http.method.toUpperCase()} ${http.path}`, handler.split('/')[1] ?? ''] as const] : [],
    ),
  );
  // The routes read only the tier names from their dependencies when they are built.
  const deps = { settings: { shards: singleShard({ free: 'plan-free' }) } };

  it('are the routes.ts of exactly the functions with http events', () => {
    const withRoutes = readdirSync(new URL('../../functions', import.meta.url)).filter((name) =>
      existsSync(new URL(`../../functions/${name}/routes.ts`, import.meta.url)),
    );

    expect(new Set(declared.map(([, name]) => name))).toEqual(new Set(withRoutes));
    expect(withRoutes.length).toBeGreaterThan(0);
  });

  it.each(declared)('%s reaches its route in functions/%s/routes.ts', async (key, name) => {
    // Prepare
    const exports = (await import(`../../functions/${name}/routes.ts`)) as Record<string, (deps: never) => Route>;
    const [routesOf] = Object.values(exports);
    const [method = '', resource = ''] = key.split(' ');

    // Act: no body and no path parameters, so the route refuses before it uses a dependency
    const refusal = routesOf!(deps as never)(apiEvent({ method, resource }));

    // Assess
    await expect(refusal).rejects.toBeInstanceOf(ValidationError);
  });
});
