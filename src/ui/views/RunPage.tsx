// One run: its state, its steps as a timeline, its log (live or archived alike), and the
// cancel and re-run buttons. The run is kept current by the run-change stream.
import { useEffect, useState } from 'preact/hooks';
import { cancelRun, getPipeline, getRun, readEvents, replacePipeline } from '../api.ts';
import { duration, when } from '../format.ts';
import { navigate } from '../router.ts';
import { isTerminal, type Run, type StepStatus } from '../types.ts';
import { ErrorNote, Page, PhaseBadge, useTicker } from './common.tsx';
import { LogViewer } from './LogViewer.tsx';
import { startedBy } from './RunList.tsx';

function Timeline({ run, now }: { run: Run; now: number }) {
  const begin = run.startedAt ? Date.parse(run.startedAt) : now;
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  const span = Math.max(1, end - begin);
  const bar = (s: StepStatus) => {
    if (!s.startedAt) return { left: '0%', width: '0%' };
    const from = Date.parse(s.startedAt) - begin;
    const to = (s.finishedAt ? Date.parse(s.finishedAt) : now) - begin;
    return { left: `${(100 * Math.max(0, from)) / span}%`, width: `${Math.max(0.5, (100 * (to - from)) / span)}%` };
  };
  return (
    <ol class="timeline" aria-label="Steps" data-testid="steps">
      {run.steps.map((s) => (
        <li key={s.name} class={`step phase-${s.phase.toLowerCase()}`} data-step={s.name} data-phase={s.phase}>
          <div class="step-head">
            <PhaseBadge phase={s.phase} />
            <span class="step-name">{s.name}</span>
            <span class="step-meta">
              {s.exitCode !== null && <span>exit {s.exitCode}</span>}
              <span>{duration(s.startedAt, s.finishedAt, now)}</span>
            </span>
          </div>
          <div class="track" aria-hidden="true">
            <div class="bar" style={bar(s)} />
          </div>
        </li>
      ))}
    </ol>
  );
}

export function RunPage({ runid }: { runid: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const now = useTicker(run !== null && !isTerminal(run.phase));

  useEffect(() => {
    const abort = new AbortController();
    let ready = false;
    void readEvents(
      `/runs?watch=true`,
      (event, data) => {
        if (event === 'ready' && !ready) {
          ready = true;
          getRun(runid, abort.signal).then(
            (r) => setRun((current) => current ?? r),
            (err: Error) => !abort.signal.aborted && setError(err.message),
          );
        }
        if (event !== 'run') return;
        const changed = JSON.parse(data) as Run;
        if (changed.runid === runid) setRun(changed);
      },
      abort.signal,
    ).catch((err: Error) => {
      if (abort.signal.aborted) return;
      // Without the stream, the run is still shown; it just does not move by itself.
      getRun(runid).then(setRun, (e: Error) => setError(e.message));
      setError(`Live updates stopped: ${err.message}`);
    });
    return () => abort.abort();
  }, [runid]);

  const cancel = async () => {
    setBusy(true);
    try {
      await cancelRun(runid);
      setRun(await getRun(runid));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  // A re-run replaces the pipeline with the spec this run ran (its version), so it is a new
  // version and a new run, exactly as PUT /resources/pipeline/<name> does from a script.
  const rerun = async () => {
    if (!run) return;
    setBusy(true);
    try {
      const resource = await getPipeline(run.name, run.version);
      const result = await replacePipeline(run.name, { spec: resource.spec, ...(resource.pipeline ? { pipeline: resource.pipeline } : {}) });
      navigate(`/ui/runs/${result.runid}`);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  if (!run) {
    return (
      <Page title="Run">
        <ErrorNote error={error} />
        {!error && <p aria-busy="true">Loading…</p>}
      </Page>
    );
  }
  return (
    <Page
      title={
        <>
          <a href={`/ui/pipelines/${encodeURIComponent(run.name)}`}>{run.name}</a> <span class="muted">run</span>{' '}
          <span class="mono run-id">{run.runid}</span>
        </>
      }
      actions={
        <>
          {!isTerminal(run.phase) && (
            <button type="button" class="danger" onClick={cancel} disabled={busy}>
              Cancel
            </button>
          )}
          {run.resource === 'pipeline' && (
            <button type="button" onClick={rerun} disabled={busy}>
              Re-run
            </button>
          )}
        </>
      }
    >
      <ErrorNote error={error} />
      <dl class="facts" data-testid="run-facts">
        <div>
          <dt>Phase</dt>
          <dd data-testid="run-phase">
            <PhaseBadge phase={run.phase} />
          </dd>
        </div>
        <div>
          <dt>Version</dt>
          <dd>{run.version}</dd>
        </div>
        <div>
          <dt>Started by</dt>
          <dd>{startedBy(run)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{when(run.startedAt ?? run.createdAt)}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{duration(run.startedAt, run.finishedAt, now)}</dd>
        </div>
        {run.message && (
          <div class="wide">
            <dt>Message</dt>
            <dd>{run.message}</dd>
          </div>
        )}
      </dl>
      <Timeline run={run} now={now} />
      <LogViewer run={run} />
    </Page>
  );
}
