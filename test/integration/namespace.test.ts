// Which namespace Kubernetes mode works in when none is given on the command line: the
// environment's, else the pod's own (its service account's namespace file), else default.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNamespace } from '../../src/serve/kubernetes.ts';

describe('the default namespace of Kubernetes mode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-sa-'));
  const file = join(dir, 'namespace');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is CONVEYOR_NAMESPACE when set, even in a pod', () => {
    writeFileSync(file, 'pod-ns\n');
    expect(defaultNamespace({ CONVEYOR_NAMESPACE: 'ci' }, file)).to.equal('ci');
  });

  it("is the pod's own namespace, from its service account, when CONVEYOR_NAMESPACE is not set", () => {
    writeFileSync(file, 'pod-ns\n');
    expect(defaultNamespace({}, file)).to.equal('pod-ns');
  });

  it('is default outside a pod, or when the file is empty', () => {
    expect(defaultNamespace({}, join(dir, 'missing'))).to.equal('default');
    writeFileSync(file, '');
    expect(defaultNamespace({}, file)).to.equal('default');
  });
});
