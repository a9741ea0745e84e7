// The CRD manifests of manifests/crds/: names, scope, status subresource, printer columns,
// structural schemas with descriptions, and the Pipeline spec kept in step with the domain's
// pipelineSpecSchema (the same fields, required fields and limits).
import { expect } from 'chai';
import { V1JSONSchemaProps, loadAllYaml } from '@kubernetes/client-node';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RUN_PHASES, STEP_PHASES, driverSteps, pendingSteps, pipelineSpecSchema } from '../../src/domain/index.ts';
import {
  API_VERSION,
  CATEGORY,
  CustomResources,
  GROUP,
  VERSION,
  parseResourceObjectName,
  resourceObjectName,
} from '../../src/kube/names.ts';

type Schema = {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  [key: string]: unknown;
};

interface Column {
  name: string;
  type: string;
  jsonPath: string;
  priority?: number;
  description?: string;
}

interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: object };
      additionalPrinterColumns: Column[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

const dir = resolve(import.meta.dirname, '../../manifests/crds');

// client-node's loader turns the schema nodes it has a model for into V1JSONSchemaProps
// objects, whose keys are property names (`x-kubernetes-list-type` → `x_kubernetes_list_type`,
// `default` → `_default`), and leaves the rest as written; back to the manifest's spelling,
// with the model's own map from property names to JSON keys.
const jsonKeyOf = new Map(V1JSONSchemaProps.getAttributeTypeMap().map((a) => [a.name, a.baseName]));

function manifestKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(manifestKeys);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const rename = value instanceof V1JSONSchemaProps;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [rename ? (jsonKeyOf.get(k) ?? k) : k, manifestKeys(v)]),
  );
}

function loadCrds(): Map<string, Crd> {
  const out = new Map<string, Crd>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const docs = loadAllYaml(readFileSync(join(dir, file), 'utf8')).filter((d) => d);
    expect(docs, file).to.have.length(1);
    const crd = manifestKeys(docs[0]) as Crd;
    expect(file, 'one file per CRD, named after it').to.equal(`${crd.metadata.name}.yaml`);
    out.set(crd.spec.names.kind, crd);
  }
  return out;
}

const crds = loadCrds();

function crd(kind: string): Crd {
  const found = crds.get(kind);
  if (!found) throw new Error(`no CRD for ${kind} in manifests/crds`);
  return found;
}

function root(kind: string): Schema {
  return crd(kind).spec.versions[0]!.schema.openAPIV3Schema;
}

function at(schema: Schema, path: string): Schema {
  let node = schema;
  for (const part of path.split('.').filter(Boolean)) {
    if (part === '[]') node = node.items!;
    else {
      const next = node.properties?.[part];
      if (!next) throw new Error(`no schema at ${path} (missing ${part})`);
      node = next;
    }
  }
  return node;
}

function walk(schema: Schema, path: string, visit: (node: Schema, path: string) => void): void {
  visit(schema, path);
  for (const [key, child] of Object.entries(schema.properties ?? {})) walk(child, `${path}.${key}`, visit);
  if (schema.items) walk(schema.items, `${path}[]`, visit);
}

function columns(kind: string): Column[] {
  return crd(kind).spec.versions[0]!.additionalPrinterColumns;
}

const LIMITS = ['type', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'minItems', 'maxItems', 'enum'] as const;

// The CRD must accept exactly what the domain accepts: same property names, same required
// fields, same types and limits, all the way down.
function expectSameShape(crdNode: Schema, domainNode: Schema, path: string): void {
  for (const key of LIMITS) expect(crdNode[key], `${path}: ${key}`).to.deep.equal(domainNode[key]);
  expect([...(crdNode.required ?? [])].sort(), `${path}: required`).to.deep.equal([...(domainNode.required ?? [])].sort());
  expect(Object.keys(crdNode.properties ?? {}).sort(), `${path}: properties`).to.deep.equal(Object.keys(domainNode.properties ?? {}).sort());
  for (const [key, child] of Object.entries(domainNode.properties ?? {})) expectSameShape(crdNode.properties![key]!, child, `${path}.${key}`);
  if (domainNode.items) expectSameShape(crdNode.items!, domainNode.items, `${path}[]`);
  if (typeof domainNode.additionalProperties === 'object') {
    expect(crdNode.additionalProperties, `${path}: additionalProperties`).to.be.an('object');
    expectSameShape(crdNode.additionalProperties as Schema, domainNode.additionalProperties, `${path}.*`);
  } else {
    // additionalProperties: false in the domain is what pruning does in the cluster.
    expect(crdNode.additionalProperties, `${path}: additionalProperties`).to.equal(undefined);
  }
}

describe('kubernetes: CRD manifests', () => {
  it('defines Pipeline, Run, ResourceDefinition and Resource, one file each', () => {
    expect([...crds.keys()].sort()).to.deep.equal(['Pipeline', 'Resource', 'ResourceDefinition', 'Run']);
  });

  for (const [kind, names] of Object.entries(CustomResources)) {
    describe(kind, () => {
      it(`is ${names.plural}.${GROUP}, namespaced, served and stored as ${VERSION}`, () => {
        const c = crd(kind);
        expect(c.apiVersion).to.equal('apiextensions.k8s.io/v1');
        expect(c.kind).to.equal('CustomResourceDefinition');
        expect(c.metadata.name).to.equal(`${names.plural}.${GROUP}`);
        expect(c.spec.group).to.equal(GROUP);
        expect(`${c.spec.group}/${c.spec.versions[0]!.name}`).to.equal(API_VERSION);
        expect(c.spec.scope).to.equal('Namespaced');
        expect(c.spec.versions).to.have.length(1);
        expect(c.spec.versions[0]).to.include({ name: VERSION, served: true, storage: true });
      });

      it('has the names of names.ts, short names and the conveyor category', () => {
        const n = crd(kind).spec.names;
        expect(n).to.deep.include({ kind: names.kind, listKind: `${names.kind}List`, plural: names.plural, singular: names.singular });
        expect(n.shortNames).to.deep.equal([...names.shortNames]);
        expect(n.categories).to.deep.equal([CATEGORY]);
      });

      it('has the status subresource', () => {
        expect(crd(kind).spec.versions[0]!.subresources).to.deep.equal({ status: {} });
      });

      it('has a structural schema with a description on every field', () => {
        const schema = root(kind);
        expect(schema.required).to.include('spec');
        walk(schema, kind, (node, path) => {
          expect(node.type, `${path}: type`).to.be.a('string');
          if (path === `${kind}.metadata`) return;
          expect(node.description, `${path}: description`).to.be.a('string').and.not.equal('');
        });
        expect(schema.properties!.metadata).to.deep.equal({ type: 'object' });
      });

      it('has an Age column, and every column points at a field of the schema', () => {
        const cols = columns(kind);
        expect(cols.at(-1)).to.deep.equal({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' });
        for (const col of cols.slice(0, -1)) {
          expect(col.jsonPath, col.name).to.match(/^\.(spec|status)\./);
          expect(at(root(kind), col.jsonPath.slice(1)).type, col.name).to.equal(col.type);
        }
      });
    });
  }

  it('short names are distinct and clash with no built-in kind', () => {
    const all = Object.values(CustomResources).flatMap((n) => [...n.shortNames]);
    expect(new Set(all).size).to.equal(all.length);
    const builtIn = ['po', 'svc', 'deploy', 'rs', 'ds', 'sts', 'cm', 'ns', 'no', 'pv', 'pvc', 'sa', 'ep', 'ev', 'hpa', 'ing', 'netpol', 'pdb', 'pc', 'sc', 'crd', 'crds', 'csr', 'rc', 'quota', 'limits', 'cj', 'job'];
    for (const s of all) expect(builtIn).not.to.include(s);
  });

  describe('Pipeline', () => {
    it('accepts exactly the fields of the domain pipelineSpecSchema', () => {
      expectSameShape(at(root('Pipeline'), 'spec'), pipelineSpecSchema as unknown as Schema, 'spec');
    });

    it('keeps step names unique (a list-map keyed by name)', () => {
      const steps = at(root('Pipeline'), 'spec.steps');
      expect(steps['x-kubernetes-list-type']).to.equal('map');
      expect(steps['x-kubernetes-list-map-keys']).to.deep.equal(['name']);
      expect(steps.minItems).to.equal(1);
      expect(at(steps, '[].name')).to.include({ maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' });
    });

    it('explains its steps (kubectl explain pipeline.spec.steps)', () => {
      expect(at(root('Pipeline'), 'spec.steps').description).to.match(/\/bin\/sh -c/);
      expect(at(root('Pipeline'), 'spec.steps.[].command').description).to.match(/\/workspace/);
    });

    it('shows the last run and its phase in kubectl get pipelines', () => {
      const cols = columns('Pipeline').filter((c) => !c.priority);
      expect(cols.map((c) => [c.name, c.jsonPath])).to.deep.equal([
        ['Last Run', '.status.lastRunId'],
        ['Run Phase', '.status.lastRunPhase'],
        ['Age', '.metadata.creationTimestamp'],
      ]);
    });

    it('records the last run, its phase, observedGeneration and conditions in status', () => {
      const status = at(root('Pipeline'), 'status');
      expect(Object.keys(status.properties!).sort()).to.deep.equal(['conditions', 'lastRunId', 'lastRunPhase', 'observedGeneration']);
      expect(status.properties!.lastRunPhase!.enum).to.deep.equal([...RUN_PHASES]);
    });
  });

  describe('Run', () => {
    it('shows phase, pipeline, current step and age in kubectl get runs', () => {
      const cols = columns('Run').filter((c) => !c.priority);
      expect(cols.map((c) => [c.name, c.jsonPath])).to.deep.equal([
        ['Phase', '.status.phase'],
        ['Pipeline', '.spec.name'],
        ['Current Step', '.status.currentStep'],
        ['Age', '.metadata.creationTimestamp'],
      ]);
    });

    it('freezes what it runs in spec; only cancelRequested may change, and only to true', () => {
      const spec = at(root('Run'), 'spec');
      expect(Object.keys(spec.properties!).sort()).to.deep.equal(['cancelRequested', 'driver', 'driverSteps', 'name', 'pipeline', 'pipelineSpec', 'requestedBy', 'resource', 'version']);
      expect(spec.required!.sort()).to.deep.equal(['driver', 'name', 'pipelineSpec', 'resource', 'version']);
      expect(spec.properties!.pipelineSpec).to.include({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
      expect(spec.properties!.cancelRequested).to.include({ type: 'boolean', default: false });
      expect(spec.properties!.pipeline!.nullable).to.equal(true);
      const rules = (spec['x-kubernetes-validations'] as { rule: string }[]).map((r) => r.rule).join('\n');
      for (const field of ['resource', 'name', 'version', 'driver', 'pipeline', 'pipelineSpec', 'requestedBy']) expect(rules).to.include(`self.${field} == oldSelf.${field}`);
      expect(spec.properties!.cancelRequested!['x-kubernetes-validations']).to.deep.equal([
        { rule: '!oldSelf || self', message: 'a cancel request cannot be withdrawn' },
      ]);
    });

    it("has the domain's phases and per-step fields in status", () => {
      const status = at(root('Run'), 'status');
      expect(Object.keys(status.properties!).sort()).to.deep.equal(
        ['conditions', 'currentStep', 'driver', 'finishedAt', 'jobName', 'logsArchived', 'message', 'observedGeneration', 'phase', 'reason', 'startedAt', 'steps'].sort(),
      );
      expect(status.properties!.phase!.enum).to.deep.equal([...RUN_PHASES]);
      const step = at(status, 'steps.[]');
      // External drivers' steps add who runs them, their event, its publication and the result.
      const driverStep = { ...driverSteps('create', null, 'x')[0]!, dispatchedAt: '', eventSeq: 1, result: { success: true, message: '', data: null } };
      expect(Object.keys(step.properties!).sort()).to.deep.equal([...new Set([...Object.keys(pendingSteps(['x'])[0]!), ...Object.keys(driverStep)])].sort());
      expect(step.properties!.phase!.enum).to.deep.equal([...STEP_PHASES]);
      for (const f of ['exitCode', 'startedAt', 'finishedAt']) expect(step.properties![f]!.nullable, f).to.equal(true);
      for (const f of ['reason', 'message', 'startedAt', 'finishedAt', 'currentStep']) expect(status.properties![f]!.nullable, f).to.equal(true);
      expect(at(status, 'steps')['x-kubernetes-list-map-keys']).to.deep.equal(['name']);
    });
  });

  it('gives every status conditions of the metav1.Condition shape, with observedGeneration', () => {
    for (const kind of crds.keys()) {
      const conditions = at(root(kind), 'status.conditions');
      expect(conditions['x-kubernetes-list-type'], kind).to.equal('map');
      expect(conditions['x-kubernetes-list-map-keys'], kind).to.deep.equal(['type']);
      const item = conditions.items!;
      expect(Object.keys(item.properties!).sort(), kind).to.deep.equal(['lastTransitionTime', 'message', 'observedGeneration', 'reason', 'status', 'type']);
      expect(item.properties!.status!.enum, kind).to.deep.equal(['True', 'False', 'Unknown']);
      expect(at(root(kind), 'status.observedGeneration').type, kind).to.equal('integer');
    }
  });

  describe('ResourceDefinition', () => {
    it('holds version, description and a free-form JSON Schema', () => {
      const spec = at(root('ResourceDefinition'), 'spec');
      expect(Object.keys(spec.properties!).sort()).to.deep.equal(['description', 'schema', 'version']);
      expect(spec.required).to.deep.equal(['schema']);
      expect(spec.properties!.schema).to.include({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
      expect(spec.properties!.version!.default).to.equal('1.0.0');
    });
  });

  describe('Resource', () => {
    it('holds type, a free-form spec, pipeline and version', () => {
      const spec = at(root('Resource'), 'spec');
      expect(Object.keys(spec.properties!).sort()).to.deep.equal(['pipeline', 'spec', 'type', 'version']);
      expect(spec.required!.sort()).to.deep.equal(['spec', 'type']);
      expect(spec.properties!.spec).to.include({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
    });

    it('is named <type>.<name>, which the schema enforces and names.ts builds and parses', () => {
      const rules = (root('Resource')['x-kubernetes-validations'] as { rule: string }[]).map((r) => r.rule);
      expect(rules.join('\n')).to.include("self.metadata.name.startsWith(self.spec.type + '.')");
      expect(root('Resource').description).to.include('<type>.<name>');
      expect(resourceObjectName('website', 'docs')).to.equal('website.docs');
      expect(parseResourceObjectName('website.docs')).to.deep.equal({ type: 'website', name: 'docs' });
      expect(parseResourceObjectName('docs')).to.equal(undefined);
      expect(parseResourceObjectName('website.a.b')).to.equal(undefined);
      expect(() => resourceObjectName('Web', 'docs')).to.throw(/type "Web"/);
      // The built-in type is the Pipeline kind, never a Resource.
      const typeRules = (at(root('Resource'), 'spec.type')['x-kubernetes-validations'] as { rule: string }[]).map((r) => r.rule);
      expect(typeRules).to.include("self != 'pipeline'");
    });
  });

  it('gives Pipeline and ResourceDefinition names the DNS-1123 label rule of the domain', () => {
    for (const kind of ['Pipeline', 'ResourceDefinition']) {
      const rules = (root(kind)['x-kubernetes-validations'] as { rule: string }[]).map((r) => r.rule).join('\n');
      expect(rules, kind).to.include("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')");
      expect(rules, kind).to.include('self.metadata.name.size() <= 63');
    }
  });
});
