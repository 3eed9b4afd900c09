import { z } from 'zod';
import { DOCUMENT_PATHS } from './openapi-documents.js';

/**
 * Builds the OpenAPI 3.1 document served at /api/openapi.json from the route table of
 * `HttpApi`: request bodies, query parameters and responses come from the same zod schemas
 * that validate them (`z.toJSONSchema`, JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
 */
export interface RouteDoc {
  method: 'GET' | 'POST';
  path: string;
  summary: string;
  description?: string;
  /** Whether the route needs `Authorization: apikey KEY`. */
  auth: boolean;
  body?: z.ZodType;
  /** An object schema whose properties are the query parameters. */
  query?: z.ZodType;
  /** Schema of the 200 response. */
  response: z.ZodType;
  /** Error statuses the route may answer besides 401 (when `auth`), 405 and 500. */
  errors: Record<number, string>;
}

type JsonSchema = Record<string, unknown>;

const ERROR_REF = { $ref: '#/components/schemas/Error' };

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

function errorResponse(description: string): JsonSchema {
  return { description, content: { 'application/json': { schema: ERROR_REF } } };
}

function operation(route: RouteDoc): JsonSchema {
  const op: JsonSchema = {
    operationId: route.path
      .replace(/^\/api\//, '')
      .replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : '')),
    summary: route.summary,
  };
  if (route.description) op.description = route.description;
  op.security = route.auth ? [{ apiKey: [] }] : [];
  if (route.query) {
    const schema = jsonSchema(route.query, 'input');
    const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((schema.required ?? []) as string[]);
    if (Object.keys(props).length > 0)
      op.parameters = Object.entries(props).map(([name, s]) => {
        const { description, ...paramSchema } = s;
        const param: JsonSchema = { name, in: 'query', required: required.has(name), schema: paramSchema };
        if (description !== undefined) param.description = description;
        return param;
      });
  }
  if (route.body) {
    op.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } };
  }
  const responses: Record<string, JsonSchema> = {
    '200': { description: 'OK', content: { 'application/json': { schema: jsonSchema(route.response, 'output') } } },
  };
  for (const [status, text] of Object.entries(route.errors)) responses[status] = errorResponse(text);
  if (route.auth) responses['401'] = errorResponse('missing or wrong API key, or no apiKey configured (code 101)');
  responses['405'] = errorResponse(`wrong method: use ${route.method} (code 107)`);
  responses['500'] = errorResponse('internal error (code 100)');
  op.responses = responses;
  return op;
}

export function buildOpenApiDocument(routes: readonly RouteDoc[], version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  Object.assign(paths, DOCUMENT_PATHS);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchboard HTTP server API',
      version,
      description:
        'Server-side API of a Switchboard hub, for backends in any language. Every route except this ' +
        'document needs `Authorization: apikey KEY`. Errors are `{"error": {"code", "message", "temporary"?}}` ' +
        'with the codes of docs/protocol.md. See docs/http-api.md.',
    },
    paths,
    components: {
      securitySchemes: {
        apiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'The header value is `apikey ` followed by the configured apiKey.',
        },
      },
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: {
                code: { type: 'integer', description: 'error code (docs/protocol.md, "Reply error codes")' },
                message: { type: 'string', description: 'what went wrong; names the bad field or parameter' },
                temporary: { type: 'boolean', description: 'present and true when retrying later may succeed' },
              },
              required: ['code', 'message'],
            },
          },
          required: ['error'],
        },
      },
    },
  };
}
