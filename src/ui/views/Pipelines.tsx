// Pipelines with their last run; one pipeline's definition (editable) and its runs; a form
// that creates one from JSON or YAML and shows the server's validation errors at the field.
import { useEffect, useRef, useState } from 'preact/hooks';
import { parseDocument, stringify } from 'yaml';
import { ApiError, createResource, getPipeline, listPipelines, listRuns, replacePipeline } from '../api.ts';
import { placeError, type FieldError } from '../field-errors.ts';
import { duration, shortId, when } from '../format.ts';
import { navigate } from '../router.ts';
import type { Resource, Run } from '../types.ts';
import { ErrorNote, Page, PhaseBadge } from './common.tsx';
import { RunList } from './RunList.tsx';

export function PipelineList() {
  const [pipelines, setPipelines] = useState<Resource[] | null>(null);
  const [lastRuns, setLastRuns] = useState<Record<string, Run | undefined>>({});
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    listPipelines(abort.signal).then(
      async (list) => {
        setPipelines(list);
        const entries = await Promise.all(list.map(async (p) => [p.name, (await listRuns({ name: p.name, limit: 1 }, abort.signal)).items[0]] as const));
        setLastRuns(Object.fromEntries(entries));
      },
      (err: Error) => !abort.signal.aborted && setError(err.message),
    );
    return () => abort.abort();
  }, []);
  return (
    <Page title="Pipelines" actions={<a class="button primary" href="/ui/pipelines/-/new">New pipeline</a>}>
      <ErrorNote error={error} />
      <div class="table-wrap">
        <table data-testid="pipelines">
          <thead>
            <tr>
              <th scope="col">Pipeline</th>
              <th scope="col">Version</th>
              <th scope="col">Steps</th>
              <th scope="col">Last run</th>
              <th scope="col">When</th>
            </tr>
          </thead>
          <tbody>
            {(pipelines ?? []).map((p) => {
              const run = lastRuns[p.name];
              return (
                <tr key={p.name}>
                  <td data-label="Pipeline">
                    <a href={`/ui/pipelines/${encodeURIComponent(p.name)}`}>{p.name}</a>
                  </td>
                  <td data-label="Version">{p.metadata.version}</td>
                  <td data-label="Steps">{Array.isArray(p.spec.steps) ? p.spec.steps.length : '—'}</td>
                  <td data-label="Last run">
                    {run ? (
                      <a href={`/ui/runs/${run.runid}`} aria-label={`Last run of ${p.name}: ${run.phase}`}>
                        <PhaseBadge phase={run.phase} /> <span class="mono">{shortId(run.runid)}</span>
                      </a>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td data-label="When">{run ? `${when(run.startedAt ?? run.createdAt)} · ${duration(run.startedAt, run.finishedAt)}` : '—'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {pipelines?.length === 0 && <p class="empty">No pipelines yet.</p>}
      </div>
    </Page>
  );
}

const EXAMPLE = `name: hello
resource: pipeline
spec:
  image: alpine:3.20
  steps:
    - name: greet
      command: echo "hello from Conveyor"
`;

/** The JSON or YAML the user typed, parsed; YAML's own errors carry their line. */
function parseSource(source: string): { value?: unknown; error?: FieldError } {
  const doc = parseDocument(source, { prettyErrors: false });
  const first = doc.errors[0];
  if (first) return { error: { field: null, line: first.linePos?.[0].line ?? null, message: `Not valid JSON or YAML: ${first.message.split('\n')[0]}` } };
  return { value: doc.toJS() };
}

function Editor({ initial, submitLabel, onSubmit, base }: { initial: string; submitLabel: string; onSubmit: (value: unknown) => Promise<void>; base?: (string | number)[] }) {
  const [source, setSource] = useState(initial);
  const [error, setError] = useState<FieldError | null>(null);
  const [busy, setBusy] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);

  // Puts the caret on the offending line, so the field is where the eye and the keyboard are.
  const showAt = (err: FieldError) => {
    setError(err);
    const el = area.current;
    if (!el || err.line === null) return;
    const lines = source.split('\n');
    const start = lines.slice(0, err.line - 1).reduce((n, l) => n + l.length + 1, 0);
    el.focus();
    el.setSelectionRange(start, start + (lines[err.line - 1]?.length ?? 0));
    el.scrollTop = Math.max(0, (err.line - 3) * 20);
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    const parsed = parseSource(source);
    if (parsed.error) return showAt(parsed.error);
    setBusy(true);
    setError(null);
    try {
      await onSubmit(parsed.value);
    } catch (err) {
      const message = (err as Error).message;
      showAt(err instanceof ApiError && err.status === 400 ? placeError(source, message, base) : { field: null, line: null, message });
    } finally {
      setBusy(false);
    }
  };

  const rows = Math.min(30, Math.max(12, source.split('\n').length + 2));
  return (
    <form class="editor" onSubmit={submit} data-testid="pipeline-form">
      <label for="pipeline-source">Pipeline as JSON or YAML</label>
      <div class="editor-body">
        <textarea
          id="pipeline-source"
          ref={area}
          spellcheck={false}
          rows={rows}
          value={source}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'pipeline-error' : undefined}
          onInput={(e) => setSource((e.target as HTMLTextAreaElement).value)}
        />
      </div>
      {error && (
        <p id="pipeline-error" class="error field-error" role="alert" data-field={error.field ?? ''} data-line={error.line ?? ''}>
          {error.field && <code>{error.field}</code>}
          {error.line !== null && <span class="muted"> (line {error.line})</span>} {error.message}
        </p>
      )}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {submitLabel}
        </button>
      </div>
    </form>
  );
}

export function NewPipeline() {
  return (
    <Page title="New pipeline">
      <p class="muted">Paste or write a resource as JSON or YAML. Creating it starts its first run.</p>
      <Editor
        initial={EXAMPLE}
        submitLabel="Create and run"
        onSubmit={async (value) => {
          const result = await createResource(value);
          navigate(`/ui/runs/${result.runid}`);
        }}
      />
    </Page>
  );
}

export function PipelinePage({ name }: { name: string }) {
  const [pipeline, setPipeline] = useState<Resource | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    getPipeline(name, undefined, abort.signal).then(setPipeline, (err: Error) => !abort.signal.aborted && setError(err.message));
    return () => abort.abort();
  }, [name]);
  return (
    <>
      <Page title={<>Pipeline {name}</>}>
        <ErrorNote error={error} />
        {pipeline && (
          <details class="definition">
            <summary>
              Definition, version {pipeline.metadata.version} (edit to start a new run)
            </summary>
            <Editor
              initial={stringify({ spec: pipeline.spec, ...(pipeline.pipeline ? { pipeline: pipeline.pipeline } : {}) })}
              submitLabel="Save and run"
              onSubmit={async (value) => {
                const result = await replacePipeline(name, value);
                navigate(`/ui/runs/${result.runid}`);
              }}
            />
          </details>
        )}
      </Page>
      <RunList name={name} phase={new URLSearchParams(location.search).get('phase') ?? undefined} embedded />
    </>
  );
}
