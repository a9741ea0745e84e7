// Reconciles one Pipeline: each new metadata.generation gets exactly one Run, named by an
// id every actor derives alike (the API's announced id for that generation, or one derived
// from the Pipeline's uid and generation), so races and restarts cannot make a second one.
import { COMMAND_RUNNER, PIPELINE_TYPE, driverSteps, newRun, type JsonObject } from '../../domain/index.ts';
import type { KubernetesStore } from '../../store/kubernetes/index.ts';
import { Annotations, runIdForGeneration, stepNamesOf, type PipelineStatus } from '../../store/kubernetes/mapping.ts';
import type { Informers } from './informers.ts';

export interface PipelineReconcilerOptions {
  namespace: string;
  informers: Informers;
  store: KubernetesStore;
}

export class PipelineReconciler {
  private readonly o: PipelineReconcilerOptions;

  constructor(options: PipelineReconcilerOptions) {
    this.o = options;
  }

  async reconcile(name: string): Promise<void> {
    const pipeline = this.o.informers.pipelines.get(name, this.o.namespace);
    if (!pipeline) return;
    const generation = pipeline.metadata.generation ?? 1;
    const annotations = pipeline.metadata.annotations ?? {};
    const status = pipeline.status ?? {};
    let runid: string = status.lastRunId ?? '';
    if ((status.observedGeneration ?? 0) < generation || !runid) {
      const announced = annotations[Annotations.nextRunGeneration] === String(generation) ? annotations[Annotations.nextRunId] : undefined;
      runid = announced ?? runIdForGeneration(pipeline.metadata.uid!, generation);
      if (!this.o.informers.runs.get(runid, this.o.namespace)) {
        const spec = pipeline.spec as unknown as JsonObject;
        const chain = annotations[Annotations.driverPipeline];
        // A Pipeline handed to a chain of external drivers gets their steps, as over the API.
        const drivers = chain ? await this.o.store.getDriverPipeline(chain) : undefined;
        const run = newRun({
          runid,
          resource: PIPELINE_TYPE,
          name,
          version: generation,
          spec,
          pipeline: chain ?? null,
          driver: chain ? null : COMMAND_RUNNER,
          stepNames: stepNamesOf(PIPELINE_TYPE, spec),
          now: new Date().toISOString(),
          // Verified at admission by the chart's ValidatingAdmissionPolicy (docs/security.md).
          requestedBy: annotations[Annotations.requestedBy] ?? null,
        });
        if (chain) run.steps = driverSteps(generation === 1 ? 'create' : 'update', drivers?.steps ?? null, PIPELINE_TYPE);
        await this.o.store.ensureRun(run, pipeline.metadata.uid!);
      }
    }
    const run = this.o.informers.runs.get(runid, this.o.namespace);
    const phase = run?.status?.phase ?? 'Pending';
    const next: PipelineStatus = {
      observedGeneration: generation,
      lastRunId: runid,
      lastRunPhase: phase,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          observedGeneration: generation,
          lastTransitionTime: status.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.lastTransitionTime ?? new Date().toISOString(),
          reason: 'RunStarted',
          message: `generation ${generation} runs as ${runid}`,
        },
      ],
    };
    if (JSON.stringify(next) === JSON.stringify(status)) return;
    await this.o.store.pipelines.replaceStatus({ ...pipeline, status: next });
  }
}
