// The OpenAPI 3 document served at /openapi.json. A test compares it with the routes the
// app really serves, so an undocumented route fails the build.
import { pipelineSpecSchema, RUN_PHASES, STEP_PHASES } from '../domain/index.ts';

const error = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const json = (schema: object, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const body = (schema: object) => ({ required: true, content: { 'application/json': { schema } } });
const path = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const query = (name: string, description: string, schema: object = { type: 'string' }) => ({ name, in: 'query', required: false, schema, description });
const errors = { 400: error, 401: error, 403: error, 404: error, 409: error, 413: error, 415: error };

const runid = path('runid', 'Run id (UUID)');
const type = path('type', 'Resource type (a resource definition name)');
const name = path('name', 'Name');
const streamParams = [
  query('since', 'Resume after this log line seq', { type: 'integer', minimum: 0 }),
  query('format', 'Frame format', { enum: ['array', 'json'] }),
];

export const openApiDocument = {
  openapi: '3.0.3',
  info: {
    title: 'Conveyor API',
    version: '0.1.0',
    description: 'A Kubernetes-native CI/CD control plane. Trailing slashes are optional on every route.',
  },
  paths: {
    '/resources': {
      post: {
        summary: 'Create a resource and start its run',
        requestBody: body(ref('ResourceInput')),
        responses: { 201: json(ref('WriteResult'), 'Created'), ...errors },
      },
    },
    '/resources/{type}': {
      get: { summary: 'List resources of a type', parameters: [type], responses: { 200: json({ type: 'array', items: ref('Resource') }), ...errors } },
    },
    '/resources/{type}/{name}': {
      get: { summary: 'Read a resource', parameters: [type, name], responses: { 200: json(ref('Resource')), ...errors } },
      put: {
        summary: 'Replace a resource spec (new version) and start a run',
        parameters: [type, name],
        requestBody: body(ref('ResourceInput')),
        responses: { 200: json(ref('WriteResult')), ...errors },
      },
      delete: {
        summary: 'Delete a resource and its versions',
        parameters: [type, name],
        responses: {
          200: json({ type: 'object', properties: { message: { type: 'string' }, name: { type: 'string' }, runid: { type: 'string' } } }, 'Deleted; external drivers serving the type are told in the run named'),
          204: { description: 'Deleted' },
          ...errors,
        },
      },
    },
    '/resources/{type}/{name}/{version}': {
      get: {
        summary: 'Read one stored version of a resource',
        parameters: [type, name, path('version', 'Version number')],
        responses: { 200: json(ref('Resource')), ...errors },
      },
    },
    '/resource-definitions': {
      get: { summary: 'List resource definitions', responses: { 200: json({ type: 'array', items: ref('ResourceDefinition') }) } },
      post: { summary: 'Create a resource definition', requestBody: body(ref('DefinitionInput')), responses: { 201: json(ref('ResourceDefinition'), 'Created'), ...errors } },
    },
    '/resource-definitions/apply': {
      post: { summary: 'Create or update a resource definition', requestBody: body(ref('DefinitionInput')), responses: { 201: json(ref('ResourceDefinition')), ...errors } },
    },
    '/resource-definitions/{name}': {
      get: { summary: 'Read a resource definition', parameters: [name], responses: { 200: json(ref('ResourceDefinition')), ...errors } },
      put: { summary: 'Replace a resource definition', parameters: [name], requestBody: body(ref('DefinitionInput')), responses: { 200: json(ref('ResourceDefinition')), ...errors } },
      delete: { summary: 'Delete a resource definition (not the built-in pipeline)', parameters: [name], responses: { 204: { description: 'Deleted' }, ...errors } },
    },
    '/pipelines': {
      get: { summary: 'List driver pipelines', responses: { 200: json({ type: 'array', items: ref('DriverPipeline') }) } },
      post: { summary: 'Create a driver pipeline', requestBody: body(ref('DriverPipeline')), responses: { 201: json(ref('DriverPipeline'), 'Created'), ...errors } },
    },
    '/pipelines/{name}': {
      get: { summary: 'Read a driver pipeline', parameters: [name], responses: { 200: json(ref('DriverPipeline')), ...errors } },
      put: { summary: 'Replace a driver pipeline', parameters: [name], requestBody: body(ref('DriverPipeline')), responses: { 200: json(ref('DriverPipeline')), ...errors } },
      delete: { summary: 'Delete a driver pipeline', parameters: [name], responses: { 204: { description: 'Deleted' }, ...errors } },
    },
    '/drivers/broadcast-message': {
      post: {
        summary: 'Publish a message to drivers',
        requestBody: body({
          type: 'object',
          required: ['event', 'payload', 'run_id'],
          properties: { event: { type: 'string' }, payload: { type: 'object' }, id: { type: 'string' }, run_id: { type: 'string' } },
        }),
        responses: { 200: json({ type: 'object', properties: { message: { type: 'string' } } }), ...errors },
      },
    },
    '/drivers': {
      get: {
        summary: 'External drivers: their JetStream consumers on the messages stream',
        responses: {
          200: json({
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                resources: { type: 'array', items: { type: 'string' } },
                subjects: { type: 'array', items: { type: 'string' } },
                connected: { type: 'boolean' },
                pending: { type: 'integer' },
                ackPending: { type: 'integer' },
                redelivered: { type: 'integer' },
                lastActive: { type: ['string', 'null'] },
              },
            },
          }),
          ...errors,
        },
      },
    },
    '/loki/api/v1/push': {
      post: {
        summary: "Loki's push API: older drivers' copy of each log line (archived once with its NATS copy)",
        requestBody: body({ type: 'object', required: ['streams'], properties: { streams: { type: 'array', items: { type: 'object' } } } }),
        responses: { 204: { description: 'Accepted' }, ...errors },
      },
    },
    '/drivers/streams/logs/{driver}/{runid}': {
      get: {
        summary: 'WebSocket: follow a run log',
        description:
          'Upgrade to a websocket. One text frame per line, ["<timestamp>","<message>"] (or a JSON object with format=json): ' +
          'stored lines first, then live ones; closes with 1000 when the run has ended and its last line was sent.',
        parameters: [path('driver', 'Driver name, e.g. command-runner'), runid, ...streamParams],
        responses: { 101: { description: 'Switching protocols' }, ...errors },
      },
    },
    '/runs': {
      get: {
        summary: 'List runs, newest first',
        parameters: [
          query('resource', 'Only runs of this resource type'),
          query('name', 'Only runs of resources with this name'),
          query('limit', 'Page size (1 to 500, default 50)', { type: 'integer' }),
          query('continue', 'Token from the previous page'),
          query('phase', 'Only runs in this phase', { enum: [...RUN_PHASES] }),
          query('watch', 'true: instead of a list, a text/event-stream of changes: `event: ready` once subscribed, then `event: run` with the changed Run as data (filtered by resource and name, not phase; `: heartbeat` comments)', { enum: ['true'] }),
        ],
        responses: {
          200: {
            description: 'A page of runs; with watch=true, a Server-Sent Events stream of run changes',
            content: {
              'application/json': { schema: { type: 'object', properties: { items: { type: 'array', items: ref('Run') }, continue: { type: 'string' } } } },
              'text/event-stream': { schema: { type: 'string' } },
            },
          },
          ...errors,
        },
      },
    },
    '/runs/{runid}': {
      get: { summary: 'Read a run', parameters: [runid], responses: { 200: json(ref('Run')), ...errors } },
    },
    '/runs/{runid}/cancel': {
      post: { summary: 'Cancel a run', parameters: [runid], responses: { 202: json({ type: 'object' }, 'Cancelled'), ...errors } },
    },
    '/logs': {
      get: {
        summary: 'Stored log lines of a run',
        description:
          'Without since, limit, q or step: every stored line (upstream\'s list). With any of them: one page of lines with seq above since, ' +
          'in seq order, and the header Conveyor-Last-Seq giving the newest stored seq of the run (404 for an unknown run).',
        parameters: [
          { ...query('runid', 'Run id'), required: true },
          query('driver', 'Only this driver'),
          query('pipeline', 'Only this pipeline'),
          query('since', 'Page: lines after this seq (default 0)', { type: 'integer', minimum: 0 }),
          query('limit', 'Page: at most this many lines (1 to 5000, default 1000)', { type: 'integer', minimum: 1, maximum: 5000 }),
          query('q', 'Page: only lines whose message contains this text, in any case (1 to 200 characters)'),
          query('step', 'Page: only lines of this step'),
        ],
        responses: {
          200: {
            ...json({ type: 'array', items: ref('LogEntry') }),
            headers: { 'Conveyor-Last-Seq': { description: 'Pages only: the newest stored seq of the run', schema: { type: 'integer' } } },
          },
          ...errors,
        },
      },
      post: {
        summary: 'A driver posts a log line for its run',
        requestBody: body({
          type: 'object',
          required: ['runid', 'driver', 'message'],
          properties: {
            runid: { type: 'string' },
            driver: { type: 'string' },
            message: { type: 'string' },
            pipeline: { type: 'string' },
            step: { type: 'string' },
            stream: { enum: ['stdout', 'stderr', 'system'] },
          },
        }),
        responses: { 201: json({ type: 'object', properties: { seq: { type: 'integer' }, timestamp: { type: 'string' } } }, 'Stored'), ...errors },
      },
    },
    '/logs/streams/{driver}/{runid}': {
      get: {
        summary: 'Server-Sent Events: follow a run log from one driver',
        parameters: [path('driver', 'Driver name'), runid, ...streamParams],
        responses: { 200: { description: 'text/event-stream: id=seq, data=LogEntry; Last-Event-ID resumes' }, ...errors },
      },
    },
    '/logs/pipeline/{runid}': {
      get: {
        summary: 'Server-Sent Events: follow a run log',
        parameters: [runid, ...streamParams],
        responses: { 200: { description: 'text/event-stream: id=seq, data=LogEntry; Last-Event-ID resumes' }, ...errors },
      },
    },
    '/health': { get: { summary: 'Health', responses: { 200: json({ type: 'object', properties: { status: { type: 'string' }, time: { type: 'integer' } } }) } } },
    '/ping': { get: { summary: 'Liveness', responses: { 200: { description: 'pong', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'Prometheus text format' } } } },
    '/openapi.json': { get: { summary: 'This document', responses: { 200: json({ type: 'object' }) } } },
  },
  // Kubernetes mode (and local mode with a token): `Authorization: Bearer <token>` on every
  // route but /health and /ping; docs/security.md has the route → verb → resource table.
  security: [{ bearer: [] }],
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'A Kubernetes token (TokenReview); websockets may send it as the subprotocol base64url.bearer.authorization.k8s.io.<token>' },
    },
    schemas: {
      Error: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } },
      PipelineSpec: pipelineSpecSchema,
      ResourceInput: {
        type: 'object',
        required: ['name', 'resource', 'spec'],
        properties: {
          name: { type: 'string', description: 'Lowercase DNS-1123 label, at most 63 characters' },
          resource: { type: 'string', description: 'Resource type, e.g. pipeline' },
          spec: { type: 'object', description: 'Validated against the type schema; for pipeline see PipelineSpec' },
          pipeline: { type: 'string', description: 'Driver pipeline to hand the resource to' },
        },
      },
      WriteResult: {
        type: 'object',
        properties: { message: { type: 'string' }, name: { type: 'string' }, runid: { type: 'string', format: 'uuid' }, version: { type: 'string' } },
      },
      Resource: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          resource: { type: 'string' },
          spec: { type: 'object' },
          pipeline: { type: 'string' },
          metadata: { type: 'object', description: 'Every value a string, as upstream clients expect.', properties: { version: { type: 'string' }, createdAt: { type: 'string' }, updatedAt: { type: 'string' } } },
        },
      },
      DefinitionInput: {
        type: 'object',
        required: ['name', 'schema'],
        properties: { name: { type: 'string' }, version: { type: 'string' }, description: { type: 'string' }, schema: { type: 'object' } },
      },
      ResourceDefinition: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          version: { type: 'string' },
          description: { type: 'string' },
          schema: { type: 'object' },
          builtIn: { type: 'boolean' },
        },
      },
      DriverPipeline: {
        type: 'object',
        required: ['name', 'resource', 'steps'],
        properties: {
          name: { type: 'string' },
          resource: { type: 'string' },
          description: { type: 'string' },
          steps: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, driver: { type: 'string' } } } },
        },
      },
      Run: {
        type: 'object',
        properties: {
          runid: { type: 'string' },
          resource: { type: 'string' },
          name: { type: 'string' },
          version: { type: 'integer' },
          driver: { type: 'string' },
          phase: { enum: [...RUN_PHASES] },
          reason: { type: 'string', nullable: true },
          message: { type: 'string', nullable: true },
          createdAt: { type: 'string' },
          requestedBy: { type: 'string', nullable: true, description: 'Who started the run: the authenticated user (Kubernetes user name), or for kubectl apply the requester recorded at admission' },
          startedAt: { type: 'string', nullable: true },
          finishedAt: { type: 'string', nullable: true },
          steps: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                phase: { enum: [...STEP_PHASES] },
                exitCode: { type: 'integer', nullable: true },
                startedAt: { type: 'string', nullable: true },
                finishedAt: { type: 'string', nullable: true },
                driver: { type: 'string', description: "External drivers' runs: the driver of this step" },
                event: { enum: ['create', 'update', 'delete'], description: "External drivers' runs: the event the driver is handed" },
                dispatchedAt: { type: 'string', description: 'When the event was published on NATS' },
                eventSeq: { type: 'integer', description: "The event's sequence in the messages stream" },
                result: {
                  type: 'object',
                  description: 'The result the driver reported',
                  properties: { success: { type: 'boolean' }, message: { type: 'string' }, data: {} },
                },
              },
            },
          },
        },
      },
      LogEntry: {
        type: 'object',
        properties: {
          runid: { type: 'string' },
          driver: { type: 'string' },
          pipeline: { type: 'string' },
          timestamp: { type: 'string', description: 'Unix time in nanoseconds, a decimal string' },
          message: { type: 'string' },
          seq: { type: 'integer' },
          step: { type: 'string', nullable: true },
          stream: { enum: ['stdout', 'stderr', 'system'] },
        },
      },
    },
  },
};
