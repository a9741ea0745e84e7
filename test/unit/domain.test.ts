import { expect } from 'chai';
import {
  BadRequestError,
  ConflictError,
  assertPipelineSpec,
  assertTransition,
  canTransition,
  dns1123Problem,
  isTerminal,
  isoFromNanos,
  isUuid,
  nanosFromIso,
  newRun,
  nowNanos,
  parseDefinitionInput,
  parseDriverPipelineInput,
  parseResourceInput,
  parseResourceReplacement,
  resultMessage,
  seedFrame,
  jsonFrame,
  skipUnstarted,
  toPublicRun,
  type LogLine,
} from '../../src/domain/index.ts';

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('domain: names', () => {
  it('accepts lowercase DNS-1123 labels up to 63 characters', () => {
    expect(dns1123Problem('ubuntu-pipeline-6')).to.equal(undefined);
    expect(dns1123Problem('a'.repeat(63))).to.equal(undefined);
  });
  it('refuses uppercase, edges, underscores, empty and long names with a reason', () => {
    expect(dns1123Problem('Ubuntu')).to.match(/lowercase/);
    expect(dns1123Problem('-a')).to.match(/DNS-1123/);
    expect(dns1123Problem('a-')).to.match(/DNS-1123/);
    expect(dns1123Problem('a_b')).to.match(/DNS-1123/);
    expect(dns1123Problem('')).to.match(/empty/);
    expect(dns1123Problem('a'.repeat(64))).to.match(/at most 63/);
  });
  it('recognises UUIDs', () => {
    expect(isUuid('fbdf5edf-66d4-46ce-859a-8ee44d6c9463')).to.equal(true);
    expect(isUuid('not-a-uuid')).to.equal(false);
  });
});

describe('domain: resource input', () => {
  const good = { name: 'p', resource: 'pipeline', spec: { steps: [] } };
  it('names the missing field', () => {
    for (const field of ['name', 'resource', 'spec'] as const) {
      const body: Record<string, unknown> = { ...good };
      delete body[field];
      const err = errorOf(() => parseResourceInput(body));
      expect(err).to.be.instanceOf(BadRequestError);
      expect(err.message).to.equal(`${field} is required`);
    }
  });
  it('names a field of the wrong type, an unknown field and a bad name', () => {
    expect(errorOf(() => parseResourceInput({ ...good, spec: 'x' })).message).to.equal('spec must be an object');
    expect(errorOf(() => parseResourceInput({ ...good, spce: {} })).message).to.equal('spce is not a known field');
    expect(errorOf(() => parseResourceInput({ ...good, name: 'Bad_Name' })).message).to.match(/^name "Bad_Name" must be a lowercase DNS-1123 label/);
    expect(errorOf(() => parseResourceInput([])).message).to.equal('body must be an object');
  });
  it('refuses a replacement whose body names another resource', () => {
    expect(errorOf(() => parseResourceReplacement({ name: 'other', spec: {} }, 'pipeline', 'p')).message).to.match(/name "other" in the body does not match "p"/);
    expect(parseResourceReplacement({ spec: { a: 1 } }, 'pipeline', 'p')).to.deep.equal({ name: 'p', resource: 'pipeline', spec: { a: 1 } });
  });
});

describe('domain: pipeline spec', () => {
  const steps = [{ name: 'a', command: 'true' }];
  it('accepts the seed spec', () => {
    expect(() =>
      assertPipelineSpec({ image: 'jimjuniorb/hello-node:1.2.3', steps: [{ name: 'print-working-directory', command: 'pwd' }] }),
    ).not.to.throw();
  });
  it('names the offending step field with upstream wording', () => {
    expect(errorOf(() => assertPipelineSpec({ steps: [{ name: 'a' }] })).message).to.equal('Resource validation failed: spec.steps[0].command is required');
    expect(errorOf(() => assertPipelineSpec({ steps: [{ name: 'a', command: 5 }] })).message).to.equal('Resource validation failed: spec.steps[0].command must be a string');
    expect(errorOf(() => assertPipelineSpec({ image: 'x' })).message).to.equal('Resource validation failed: spec.steps is required');
    expect(errorOf(() => assertPipelineSpec({ steps: [] })).message).to.match(/spec.steps must NOT have fewer than 1 items/);
    expect(errorOf(() => assertPipelineSpec({ steps, timeoutSeconds: 0 })).message).to.match(/spec.timeoutSeconds must be >= 1/);
  });
  it('refuses step names that cannot be container names, and duplicates', () => {
    expect(errorOf(() => assertPipelineSpec({ steps: [{ name: 'Build Step', command: 'x' }] })).message).to.match(/spec.steps\[0\].name must match pattern/);
    expect(errorOf(() => assertPipelineSpec({ steps: [...steps, ...steps] })).message).to.match(/spec.steps\[1\].name "a" is used by an earlier step/);
  });
});

describe('domain: definitions and driver pipelines', () => {
  it('defaults version and description, and checks names', () => {
    expect(parseDefinitionInput({ name: 'build', schema: { type: 'object' } })).to.deep.equal({
      name: 'build',
      version: '1.0.0',
      description: '',
      schema: { type: 'object' },
    });
    expect(errorOf(() => parseDefinitionInput({ name: 'build' })).message).to.equal('schema is required');
  });
  it('refuses duplicate step ids in a driver pipeline', () => {
    const step = { id: 's1', name: 'one', driver: 'd' };
    expect(errorOf(() => parseDriverPipelineInput({ name: 'p', resource: 'build', steps: [step, step] })).message).to.match(/steps\[1\].id "s1"/);
  });
});

describe('domain: run state machine', () => {
  it('moves forward only', () => {
    expect(canTransition('Pending', 'Running')).to.equal(true);
    expect(canTransition('Running', 'Succeeded')).to.equal(true);
    expect(canTransition('Pending', 'Succeeded'), 'a quick pod can finish between two observations').to.equal(true);
    expect(canTransition('Succeeded', 'Running')).to.equal(false);
    expect(canTransition('Running', 'Pending')).to.equal(false);
    expect(isTerminal('Cancelled')).to.equal(true);
    expect(() => assertTransition({ runid: 'r', phase: 'Failed' }, 'Running')).to.throw(ConflictError, /Failed and cannot become Running/);
  });
  it('creates runs Pending, and says why when no driver serves the type', () => {
    const base = { runid: 'r', resource: 'pipeline', name: 'n', version: 1, spec: {}, pipeline: null, stepNames: ['a', 'b'], now: 't' };
    const served = newRun({ ...base, driver: 'command-runner' });
    expect(served.phase).to.equal('Pending');
    expect(served.steps.map((s) => s.phase)).to.deep.equal(['Pending', 'Pending']);
    const orphan = newRun({ ...base, resource: 'build', driver: null });
    expect(orphan.reason).to.equal('NoDriver');
    expect(orphan.message).to.match(/no driver serves resources of type "build"/);
    expect(toPublicRun(served)).not.to.have.property('spec');
  });
  it('skips steps that never started and reports the failed step', () => {
    const steps = skipUnstarted([
      { name: 'a', phase: 'Failed', exitCode: 3, startedAt: 't', finishedAt: 't' },
      { name: 'b', phase: 'Pending', exitCode: null, startedAt: null, finishedAt: null },
    ]);
    expect(steps[1]!.phase).to.equal('Skipped');
    expect(resultMessage(steps)).to.equal('step a failed with exit code 3');
    expect(resultMessage([])).to.equal('Pipeline executed successfully');
  });
});

describe('domain: log frames and timestamps', () => {
  const line: LogLine = { runid: 'r', seq: 7, ts: '1754401234000000001', driver: 'd', pipeline: 'p', step: 's', stream: 'stdout', message: 'hi "there"' };
  it('builds the seed frame: a JSON array of two strings', () => {
    expect(JSON.parse(seedFrame(line))).to.deep.equal(['1754401234000000001', 'hi "there"']);
    expect(JSON.parse(jsonFrame(line))).to.deep.equal({ seq: 7, ts: '1754401234000000001', step: 's', stream: 'stdout', message: 'hi "there"' });
  });
  it('stamps strictly increasing nanoseconds, even within one millisecond', () => {
    const a = nowNanos(1000);
    const b = nowNanos(1000);
    expect(BigInt(b) > BigInt(a)).to.equal(true);
    expect(a).to.match(/^\d+$/);
  });
  it('converts RFC 3339 nano timestamps both ways without losing precision', () => {
    const iso = '2025-08-05T13:40:34.123456789Z';
    expect(nanosFromIso(iso)).to.equal('1754401234123456789');
    expect(isoFromNanos('1754401234123456789')).to.equal(iso);
    expect(nanosFromIso('2025-08-05T13:40:34Z')).to.equal('1754401234000000000');
  });
});
