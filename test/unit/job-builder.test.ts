import { expect } from 'chai';
import type { V1Container, V1Job } from '@kubernetes/client-node';
import { newRun, type PipelineSpec, type RunRecord } from '../../src/domain/index.ts';
import { TERMINATION_GRACE_SECONDS, buildJob, needsSequentialSteps } from '../../src/drivers/command-runner/kubernetes/index.ts';
import { STEP_ENTRYPOINT, stepCommand } from '../../src/drivers/command-runner/kubernetes/step-entrypoint.ts';
import { LOGS_FINALIZER, jobNameFor } from '../../src/kube/names.ts';

const RUNID = '7f0e4a52-93c1-4c4b-9d4e-2b1f0a6c8d3e';
const RUN_OBJECT = { apiVersion: 'conveyor.ci/v1alpha1', kind: 'Run', name: RUNID, uid: 'a5b3c1d2-0000-4000-8000-000000000001' };

function runOf(spec: PipelineSpec, runid = RUNID): RunRecord {
  return newRun({
    runid,
    resource: 'pipeline',
    name: 'ubuntu-pipeline-6',
    version: 1,
    spec: spec as unknown as RunRecord['spec'],
    pipeline: null,
    driver: 'command-runner',
    stepNames: spec.steps.map((s) => s.name),
    now: '2026-01-01T00:00:00.000Z',
  });
}

const SEED: PipelineSpec = {
  image: 'jimjuniorb/hello-node:1.2.3',
  steps: [
    { name: 'hello', command: 'echo "Hello from Conveyor"' },
    { name: 'where', command: 'pwd' },
    { name: 'os', command: 'cat /etc/os-release' },
  ],
};

function build(spec: PipelineSpec = SEED): V1Job {
  return buildJob({ run: runOf(spec), namespace: 'ci', runObject: RUN_OBJECT });
}

function allContainers(job: V1Job): V1Container[] {
  const pod = job.spec!.template.spec!;
  return [...(pod.initContainers ?? []), ...pod.containers];
}

describe('kubernetes: job builder', () => {
  it('names the Job after the run id, a DNS-1123 label of at most 63 characters', () => {
    const job = build();
    expect(job.apiVersion).to.equal('batch/v1');
    expect(job.kind).to.equal('Job');
    expect(job.metadata!.name).to.equal(`run-${RUNID}`);
    expect(jobNameFor(RUNID)).to.equal(job.metadata!.name);
    expect(job.metadata!.name!.length).to.be.at.most(63);
    expect(job.metadata!.name).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(job.metadata!.namespace).to.equal('ci');
  });

  it('refuses run ids that cannot name a Job', () => {
    expect(() => jobNameFor('Not A UUID')).to.throw(/cannot name a Job/);
    expect(() => jobNameFor('x'.repeat(60))).to.throw(/at most 63/);
  });

  it('is a pure function: the same run gives the same Job', () => {
    expect(build()).to.deep.equal(build());
  });

  it('labels the Job and the pod template', () => {
    const job = build();
    const expected = {
      'app.kubernetes.io/managed-by': 'conveyor',
      'conveyor.ci/run-id': RUNID,
      'conveyor.ci/pipeline': 'ubuntu-pipeline-6',
      'conveyor.ci/driver': 'command-runner',
    };
    expect(job.metadata!.labels).to.deep.equal(expected);
    expect(job.spec!.template.metadata!.labels).to.deep.equal(expected);
  });

  it('is owned by its Run, as controller, blocking the Run deletion until it is gone', () => {
    expect(build().metadata!.ownerReferences).to.deep.equal([{ ...RUN_OBJECT, controller: true, blockOwnerDeletion: true }]);
  });

  it('runs every step as a container of one pod, in order, each taking its turn through the step entrypoint', () => {
    const pod = build().spec!.template.spec!;
    expect(pod.initContainers).to.equal(undefined);
    expect(pod.containers.map((c) => c.name)).to.deep.equal(['hello', 'where', 'os']);
    expect(pod.containers.map((c) => c.command)).to.deep.equal([
      stepCommand(1, 'echo "Hello from Conveyor"'),
      stepCommand(2, 'pwd'),
      stepCommand(3, 'cat /etc/os-release'),
    ]);
    const [sh, c, script, argv0, ...args] = stepCommand(2, 'pwd');
    expect([sh, c, argv0, ...args]).to.deep.equal(['/bin/sh', '-c', 'conveyor-step', '2', 'pwd']);
    // Kubernetes turns `$$` into `$` (and would expand `$(NAME)`): the script is escaped.
    expect(script!.replaceAll('$$', '$')).to.equal(STEP_ENTRYPOINT);
    // The entrypoint tells a dead step from a slow one by its pid.
    expect(pod.shareProcessNamespace).to.equal(true);
  });

  it('has one container for a one-step pipeline', () => {
    const pod = build({ image: 'busybox:1.36', steps: [{ name: 'only', command: 'true' }] }).spec!.template.spec!;
    expect(pod.initContainers).to.equal(undefined);
    expect(pod.containers.map((c) => c.name)).to.deep.equal(['only']);
  });

  it("runs every step in the pipeline's image, in /workspace, a shared emptyDir, beside the steps' own directory", () => {
    const job = build();
    const pod = job.spec!.template.spec!;
    expect(pod.volumes).to.deep.equal([
      { name: 'workspace', emptyDir: {} },
      { name: 'conveyor-steps', emptyDir: {} },
    ]);
    for (const c of allContainers(job)) {
      expect(c.image).to.equal('jimjuniorb/hello-node:1.2.3');
      expect(c.imagePullPolicy).to.equal('IfNotPresent');
      expect(c.workingDir).to.equal('/workspace');
      expect(c.volumeMounts).to.deep.equal([
        { name: 'workspace', mountPath: '/workspace' },
        { name: 'conveyor-steps', mountPath: '/conveyor/steps' },
      ]);
    }
  });

  it('keeps the sequential model (init containers, plain commands) for a pipeline that asks for a device', () => {
    const spec = { ...SEED, resources: { limits: { 'nvidia.com/gpu': '1', memory: '1Gi' } } };
    expect(needsSequentialSteps(spec)).to.equal(true);
    expect(needsSequentialSteps({ ...SEED, resources: { requests: { cpu: '1', 'hugepages-2Mi': '4Mi', 'ephemeral-storage': '1Gi' } } })).to.equal(false);
    const pod = build(spec).spec!.template.spec!;
    expect(pod.initContainers!.map((c) => [c.name, c.command])).to.deep.equal([
      ['hello', ['/bin/sh', '-c', 'echo "Hello from Conveyor"']],
      ['where', ['/bin/sh', '-c', 'pwd']],
    ]);
    expect(pod.containers.map((c) => [c.name, c.command])).to.deep.equal([['os', ['/bin/sh', '-c', 'cat /etc/os-release']]]);
    expect(pod.shareProcessNamespace).to.equal(undefined);
    expect(pod.volumes).to.deep.equal([{ name: 'workspace', emptyDir: {} }]);
    // One step at a time: each holds the device and the whole of what was asked.
    for (const c of [...pod.initContainers!, ...pod.containers]) expect(c.resources).to.deep.equal({ limits: { 'nvidia.com/gpu': '1', memory: '1Gi' } });
  });

  it('never restarts a step and retries the pod only as often as the pipeline says', () => {
    const job = build();
    expect(job.spec!.template.spec!.restartPolicy).to.equal('Never');
    expect(job.spec!.backoffLimit).to.equal(0);
    expect(build({ ...SEED, retries: 2 }).spec!.backoffLimit).to.equal(2);
    // A retry starts only once the failed pod has stopped: two attempts never overlap.
    expect(job.spec!.podReplacementPolicy).to.equal('Failed');
  });

  it('sets activeDeadlineSeconds on the Job from timeoutSeconds, and none without one', () => {
    expect(build().spec!).not.to.have.property('activeDeadlineSeconds');
    expect(build({ ...SEED, timeoutSeconds: 90 }).spec!.activeDeadlineSeconds).to.equal(90);
    expect(build({ ...SEED, timeoutSeconds: 90 }).spec!.template.spec!.activeDeadlineSeconds).to.equal(undefined);
  });

  it('leaves cleanup to Conveyor: no ttlSecondsAfterFinished', () => {
    expect(build().spec!.ttlSecondsAfterFinished).to.equal(undefined);
  });

  it('keeps the pod until its logs are archived with a finalizer on the pod template', () => {
    const job = build();
    expect(job.spec!.template.metadata!.finalizers).to.deep.equal([LOGS_FINALIZER]);
    expect(LOGS_FINALIZER).to.equal('conveyor.ci/logs');
    expect(job.metadata!.finalizers).to.equal(undefined);
  });

  it('applies secure defaults to the pod and every container', () => {
    const job = build();
    const pod = job.spec!.template.spec!;
    expect(pod.securityContext).to.deep.equal({ seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.enableServiceLinks).to.equal(false);
    expect(pod.terminationGracePeriodSeconds).to.equal(TERMINATION_GRACE_SECONDS);
    for (const c of allContainers(job)) {
      expect(c.securityContext).to.deep.equal({
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
    }
  });

  it('mounts no service-account token unless the pipeline names an account', () => {
    const plain = build().spec!.template.spec!;
    expect(plain.automountServiceAccountToken).to.equal(false);
    expect(plain.serviceAccountName).to.equal(undefined);
    const named = build({ ...SEED, serviceAccountName: 'deployer' }).spec!.template.spec!;
    expect(named.serviceAccountName).to.equal('deployer');
    expect(named.automountServiceAccountToken).to.equal(true);
  });

  it("sets the pipeline's env on every container, next to the variables local mode sets", () => {
    const job = build({ ...SEED, env: [{ name: 'GREETING', value: 'hi' }, { name: 'EMPTY', value: '' }] });
    for (const c of allContainers(job)) {
      expect(c.env).to.deep.equal([
        { name: 'CONVEYOR_RUN_ID', value: RUNID },
        { name: 'CONVEYOR_WORKSPACE', value: '/workspace' },
        { name: 'GREETING', value: 'hi' },
        { name: 'EMPTY', value: '' },
        { name: 'CONVEYOR_STEP', value: c.name },
      ]);
    }
  });

  it("doubles every $ of a step's command and env values, which Kubernetes' $(NAME) expansion turns back into the text as written", () => {
    const command = 'test "$$" -gt 1 && echo "$(CONVEYOR_STEP) $HOME $$$(X)"';
    const value = '$(CONVEYOR_STEP) costs $$5';
    const escapedCommand = 'test "$$$$" -gt 1 && echo "$$(CONVEYOR_STEP) $$HOME $$$$$$(X)"';
    const escapedValue = '$$(CONVEYOR_STEP) costs $$$$5';
    const job = build({ image: 'busybox:1.36', env: [{ name: 'PRICE', value }], steps: [{ name: 'a', command: 'true' }, { name: 'b', command }] });
    const [first, second] = job.spec!.template.spec!.containers;
    expect(second!.command!.at(-1)).to.equal(escapedCommand);
    expect(first!.command!.at(-1)).to.equal('true');
    for (const c of [first!, second!]) expect(c.env!.find((e) => e.name === 'PRICE')!.value).to.equal(escapedValue);
    // The sequential model (a device) escapes its plain commands alike.
    const sequential = build({ image: 'busybox:1.36', resources: { limits: { 'nvidia.com/gpu': '1' } }, steps: [{ name: 'a', command }, { name: 'b', command: 'true' }] });
    expect(sequential.spec!.template.spec!.initContainers![0]!.command).to.deep.equal(['/bin/sh', '-c', escapedCommand]);
  });

  it('lets the env override CONVEYOR_RUN_ID but never CONVEYOR_STEP, and names each variable once', () => {
    const job = build({ ...SEED, env: [{ name: 'CONVEYOR_STEP', value: 'x' }, { name: 'CONVEYOR_RUN_ID', value: 'mine' }, { name: 'A', value: '1' }, { name: 'A', value: '2' }] });
    const env = job.spec!.template.spec!.containers.at(-1)!.env!;
    expect(env).to.deep.equal([
      { name: 'CONVEYOR_RUN_ID', value: 'mine' },
      { name: 'CONVEYOR_WORKSPACE', value: '/workspace' },
      { name: 'A', value: '2' },
      { name: 'CONVEYOR_STEP', value: 'os' },
    ]);
  });

  it('makes the pod request what the pipeline asked for once, and gives every step the limits', () => {
    for (const c of allContainers(build())) expect(c.resources).to.equal(undefined);
    const job = build({ ...SEED, resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } } });
    const containers = allContainers(job);
    expect(containers.map((c) => c.resources)).to.deep.equal([
      { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } },
      { requests: { cpu: '0', memory: '0' }, limits: { memory: '128Mi' } },
      { requests: { cpu: '0', memory: '0' }, limits: { memory: '128Mi' } },
    ]);
    // Each container has its own copy: changing one cannot change another.
    expect(containers[1]!.resources!.limits).not.to.equal(containers[2]!.resources!.limits);
    // A limit alone defaults the request to the limit, so the later steps say zero.
    const onlyLimits = allContainers(build({ ...SEED, resources: { limits: { cpu: '1' } } }));
    expect(onlyLimits.map((c) => c.resources)).to.deep.equal([{ limits: { cpu: '1' } }, { requests: { cpu: '0' }, limits: { cpu: '1' } }, { requests: { cpu: '0' }, limits: { cpu: '1' } }]);
  });

  it('refuses a run without an image instead of building an invalid Job', () => {
    const noImage = runOf({ steps: [{ name: 'a', command: 'true' }] });
    expect(() => buildJob({ run: noImage, namespace: 'ci', runObject: RUN_OBJECT })).to.throw(/has no image/);
    const emptyImage = runOf({ image: '', steps: [{ name: 'a', command: 'true' }] });
    expect(() => buildJob({ run: emptyImage, namespace: 'ci', runObject: RUN_OBJECT })).to.throw(/has no image/);
  });

  it('refuses a run without steps', () => {
    const run = { ...runOf(SEED), spec: { image: 'busybox:1.36', steps: [] } };
    expect(() => buildJob({ run, namespace: 'ci', runObject: RUN_OBJECT })).to.throw(/has no steps/);
  });
});
