/**
 * The document routes of the HTTP API (docs/collab.md; served by collab/http-routes.ts, outside
 * the HttpApi route table because they take a path parameter and binary bodies), as OpenAPI
 * 3.1 path items for /api/openapi.json.
 */
type JsonSchema = Record<string, unknown>;

const ERROR_REF = { $ref: '#/components/schemas/Error' };
const error = (description: string): JsonSchema => ({ description, content: { 'application/json': { schema: ERROR_REF } } });
const NAME: JsonSchema = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'The document: a channel of a namespace with `document: true`, e.g. `docs:readme`',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};
const COMMON: Record<string, JsonSchema> = {
  '401': error('missing or wrong API key, or no apiKey configured (code 101)'),
  '404': error('not a document: the namespace has no `document: true` (code 124)'),
  '405': error('wrong method (code 104)'),
  '503': error('the document could not be loaded or stored (code 123), or too many documents are open (code 122); temporary'),
  '500': error('internal error (code 100)'),
};
const list = (what: string): JsonSchema => ({ name: what, in: 'query', required: false, description: `comma-separated ${what} names`, schema: { type: 'string' } });

export const DOCUMENT_PATHS: Record<string, Record<string, JsonSchema>> = {
  '/api/documents/{name}': {
    get: {
      operationId: 'documentRead',
      summary: 'Reads a document: the named Y.Text values as text, Y.Map and Y.Array values as JSON',
      security: [{ apiKey: [] }],
      parameters: [NAME, list('text'), list('map'), list('array')],
      responses: {
        '200': {
          description: 'OK',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['name', 'seq', 'text', 'json'],
                properties: {
                  name: { type: 'string' },
                  seq: { type: 'integer', description: 'the last stored update this node has applied' },
                  text: { type: 'object', additionalProperties: { type: 'string' } },
                  json: { type: 'object', additionalProperties: {} },
                },
              },
            },
          },
        },
        ...COMMON,
      },
    },
  },
  '/api/documents/{name}/state': {
    get: {
      operationId: 'documentState',
      summary: "The document's state as a binary Yjs update (or, with `sv`, only what that state vector lacks)",
      security: [{ apiKey: [] }],
      parameters: [NAME, { name: 'sv', in: 'query', required: false, description: 'a Yjs state vector, base64', schema: { type: 'string' } }],
      responses: {
        '200': { description: 'A Yjs update (encodeStateAsUpdate)', content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        ...COMMON,
      },
    },
  },
  '/api/documents/{name}/update': {
    post: {
      operationId: 'documentUpdate',
      summary: 'Stores a binary Yjs update and sends it to every editor (as the backend: no read-only check)',
      security: [{ apiKey: [] }],
      parameters: [NAME],
      requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
      responses: {
        '200': {
          description: 'Stored and applied',
          content: {
            'application/json': {
              schema: { type: 'object', required: ['name', 'seq'], properties: { name: { type: 'string' }, seq: { type: 'integer' } } },
            },
          },
        },
        '400': error('not a Yjs update (code 107)'),
        '413': error('larger than collab.maxUpdateBytes, or the document would pass collab.maxDocumentBytes (code 121)'),
        ...COMMON,
      },
    },
  },
};
