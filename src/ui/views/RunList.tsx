// Runs, newest first, live: the list is read after the run-change stream is open, and every
// change event updates (or adds) its row. Filters by pipeline and phase; pages with the
// API's continue token.
import { useEffect, useState } from 'preact/hooks';
import { listRuns, readEvents, type RunPage } from '../api.ts';
import { duration, shortId, when } from '../format.ts';
import { navigate } from '../router.ts';
import { RUN_PHASES, isTerminal, type Run } from '../types.ts';
import { ErrorNote, Page, PhaseBadge, useTicker } from './common.tsx';

const PAGE = 25;

export function startedBy(run: Run): string {
  return run.requestedBy ?? '—';
}

function matches(run: Run, name?: string, phase?: string): boolean {
  return run.resource === 'pipeline' && (!name || run.name === name) && (!phase || run.phase === phase);
}

export function RunList({ name, phase, embedded = false }: { name?: string; phase?: string; embedded?: boolean }) {
  const [runs, setRuns] = useState<Run[]>([]);
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [next, setNext] = useState<string | undefined>();
  const [error, setError] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const pageIndex = cursors.length - 1;
  const now = useTicker(runs.some((r) => !isTerminal(r.phase)));

  useEffect(() => {
    const abort = new AbortController();
    let page: RunPage | undefined;
    const early: Run[] = [];
    const apply = (changed: Run) =>
      setRuns((current) => {
        const at = current.findIndex((r) => r.runid === changed.runid);
        if (at >= 0) {
          if (!matches(changed, name, phase)) return current.filter((r) => r.runid !== changed.runid);
          const copy = current.slice();
          copy[at] = changed;
          return copy;
        }
        // A new run goes on top of the first page; later pages keep their place.
        if (pageIndex === 0 && matches(changed, name, phase)) {
          return [changed, ...current].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, PAGE);
        }
        return current;
      });
    const ready = new Promise<void>((resolve) => {
      const q = new URLSearchParams({ watch: 'true', resource: 'pipeline' });
      if (name) q.set('name', name);
      readEvents(
        `/runs?${q}`,
        (event, data) => {
          if (event === 'ready') resolve();
          if (event !== 'run') return;
          const run = JSON.parse(data) as Run;
          if (page) apply(run);
          else early.push(run);
        },
        abort.signal,
      ).catch((err: Error) => {
        resolve();
        if (!abort.signal.aborted) setError(`Live updates stopped: ${err.message}. Reload to resume.`);
      });
    });
    // The stream first, then the list, then the changes that came in between: none missed.
    void ready
      .then(() => listRuns({ name, phase, limit: PAGE, continue: cursors[pageIndex] }, abort.signal))
      .then((p) => {
        page = p;
        setRuns(p.items);
        setNext(p.continue);
        setLoaded(true);
        setError(null);
        early.forEach(apply);
      })
      .catch((err: Error) => {
        if (!abort.signal.aborted) setError(err.message);
      });
    return () => abort.abort();
  }, [name, phase, cursors]);

  const setFilter = (key: 'pipeline' | 'phase', value: string) => {
    const q = new URLSearchParams(location.search);
    if (value) q.set(key, value);
    else q.delete(key);
    setCursors([undefined]);
    navigate(`${location.pathname}${q.size ? `?${q}` : ''}`, true);
  };

  return (
    <Page title="Runs" level={embedded ? 2 : 1} actions={embedded ? undefined : <a class="button primary" href="/ui/pipelines/-/new">New pipeline</a>}>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        {!embedded && <label>
          Pipeline
          <input
            type="search"
            name="pipeline"
            value={name ?? ''}
            placeholder="any"
            onChange={(e) => setFilter('pipeline', (e.target as HTMLInputElement).value.trim())}
          />
        </label>}
        <label>
          Phase
          <select name="phase" value={phase ?? ''} onChange={(e) => setFilter('phase', (e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {RUN_PHASES.map((p) => (
              <option value={p}>{p}</option>
            ))}
          </select>
        </label>
      </form>
      <ErrorNote error={error} />
      <div class="table-wrap">
        <table class="runs" data-testid="runs">
          <thead>
            <tr>
              <th scope="col">Phase</th>
              <th scope="col">Pipeline</th>
              <th scope="col">Run</th>
              <th scope="col">Started by</th>
              <th scope="col">Started</th>
              <th scope="col">Duration</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((run) => (
              <tr key={run.runid} data-runid={run.runid}>
                <td data-label="Phase">
                  <PhaseBadge phase={run.phase} />
                </td>
                <td data-label="Pipeline">
                  <a href={`/ui/pipelines/${encodeURIComponent(run.name)}`}>{run.name}</a>
                  <span class="muted"> v{run.version}</span>
                </td>
                <td data-label="Run">
                  <a href={`/ui/runs/${run.runid}`} class="mono" aria-label={`Run ${run.runid} of ${run.name}`}>
                    {shortId(run.runid)}
                  </a>
                </td>
                <td data-label="Started by">{startedBy(run)}</td>
                <td data-label="Started">{when(run.startedAt ?? run.createdAt)}</td>
                <td data-label="Duration">{duration(run.startedAt, run.finishedAt, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {loaded && runs.length === 0 && <p class="empty">No runs{name || phase ? ' match these filters' : ' yet'}.</p>}
      </div>
      <nav class="pager" aria-label="Pages of runs">
        <button type="button" disabled={pageIndex === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </button>
        <span>Page {pageIndex + 1}</span>
        <button type="button" disabled={!next} onClick={() => setCursors([...cursors, next])}>
          Older
        </button>
      </nav>
    </Page>
  );
}
