// Upstream Conveyor CI's own HTTP client (pkg/driver-runtime/client.go) against this server:
// the exact bodies it sends where a driver starts up, and the shape its decoder needs back.
import { expect } from 'chai';
import { request } from '../support/http.ts';
import { inMode, suiteServer } from '../support/server.ts';

// Upstream's command-runner applies its own `pipeline` definition at start-up (and panics
// if that fails). Its `types.ResourceDefinition` always carries `id` and `version`.
const upstreamPipelineDefinition = {
  id: '',
  name: 'pipeline',
  description: 'A CI/CD pipeline run by the command runner',
  version: '0.1.0',
  schema: {
    type: 'object',
    properties: {
      image: { type: 'string' },
      steps: {
        type: 'array',
        items: { type: 'object', properties: { name: { type: 'string' }, command: { type: 'string' } }, required: ['name', 'command'] },
      },
    },
    required: ['image', 'steps'],
  },
};

const seedSpec = {
  image: 'jimjuniorb/hello-node:1.2.3',
  steps: [
    { name: 'print-working-directory', command: 'pwd' },
    { name: 'list-files', command: 'ls -l' },
  ],
};

// `types.Resource` as Go's encoding/json writes it: every field, zero values included.
const createBody = `{"id":"","name":"upstream-client-pipeline","resource":"pipeline","metadata":null,"spec":${JSON.stringify(seedSpec)},"pipeline":""}`;
const createBodyNoPipeline = `{"id":"","name":"upstream-client-2","resource":"pipeline","metadata":null,"spec":${JSON.stringify(seedSpec)}}`;
const updateBody = `{"id":"","name":"upstream-client-pipeline","resource":"pipeline","metadata":null,"spec":${JSON.stringify({ ...seedSpec, steps: [{ name: 'pwd', command: 'pwd' }] })},"pipeline":""}`;

describe(inMode('upstream HTTP client compatibility'), () => {
  const suite = suiteServer();
  const call = (method: string, path: string, body?: unknown) => request(suite.server.url, method, path, body);

  it('accepts a compatible `pipeline` definition applied at a driver start-up and keeps the built-in one', async () => {
    const before = (await call('GET', '/resource-definitions/pipeline')).body;
    const applied = await call('POST', '/resource-definitions/apply/', JSON.stringify(upstreamPipelineDefinition));
    expect(applied.status, JSON.stringify(applied.body)).to.equal(201);
    expect(applied.body).to.include({ name: 'pipeline', builtIn: true });
    const after = (await call('GET', '/resource-definitions/pipeline')).body;
    expect(after).to.deep.equal(before);
    // The built-in schema still rules: a step name Kubernetes could not use is refused.
    const bad = await call('POST', '/resources/', { name: 'bad-step', resource: 'pipeline', spec: { steps: [{ name: 'Bad Name', command: 'true' }] } });
    expect(bad.status).to.equal(400);
  });

  it('refuses an incompatible `pipeline` definition, saying why, and changes nothing', async () => {
    const incompatible = { ...upstreamPipelineDefinition, schema: { type: 'object', required: ['repository'] } };
    const res = await call('POST', '/resource-definitions/apply', incompatible);
    expect(res.status).to.equal(409);
    expect(res.body.error).to.match(/"pipeline" is built in: the schema applied must accept the built-in pipelines/);
    expect((await call('GET', '/resource-definitions/pipeline')).body.schema.required).to.deep.equal(['steps']);
  });

  it('creates and updates with "id":"", "metadata":null and "pipeline":"", and answers metadata as strings', async () => {
    const created = await call('POST', '/resources/', createBody);
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    expect(created.body).to.include({ message: 'Resource created successfully', name: 'upstream-client-pipeline' });
    const plain = await call('POST', '/resources/', createBodyNoPipeline);
    expect(plain.status, JSON.stringify(plain.body)).to.equal(201);

    const updated = await call('PUT', '/resources/pipeline/upstream-client-pipeline', updateBody);
    expect(updated.status, JSON.stringify(updated.body)).to.equal(200);
    expect(updated.body.version).to.equal('2');

    const got = await call('GET', '/resources/pipeline/upstream-client-pipeline');
    expect(got.status).to.equal(200);
    expect(got.body.pipeline, 'an empty pipeline is no pipeline').to.equal(undefined);
    // Go decodes `metadata` into map[string]string: every value must be a string.
    for (const [key, value] of Object.entries(got.body.metadata)) expect(value, `metadata.${key}`).to.be.a('string');
    expect(got.body.metadata.version).to.equal('2');
    const old = await call('GET', '/resources/pipeline/upstream-client-pipeline/1');
    expect(old.body.metadata.version).to.equal('1');
    const list = await call('GET', '/resources/pipeline');
    for (const item of list.body) expect(item.metadata.version).to.be.a('string');
  });

  it('still refuses metadata that is not an object, naming the field', async () => {
    const res = await call('POST', '/resources/', { name: 'm', resource: 'pipeline', metadata: 'x', spec: seedSpec });
    expect(res.status).to.equal(400);
    expect(res.body.error).to.match(/^metadata /);
    expect((await call('GET', '/resources/pipeline/m')).status).to.equal(404);
  });
});
