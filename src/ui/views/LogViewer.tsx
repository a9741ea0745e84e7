// The log viewer: virtualized rows (only the lines in view are in the DOM), fetched page by
// page from a LogModel, following the tail until the user scrolls up. ANSI colours, links,
// line numbers that link to themselves (#L<seq>), timestamps, step folding, search, download.
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import { Virtualizer, elementScroll, observeElementOffset, observeElementRect } from '@tanstack/virtual-core';
import { parseLine } from '../ansi.ts';
import { lineTime } from '../format.ts';
import { LogModel } from '../log-model.ts';
import { isTerminal, type LogEntry, type Run } from '../types.ts';

const ROW = 20;

interface Fold {
  step: string;
  start: number;
  // The step's last line; null: to the end of the log (the step still runs, or is last).
  end: number | null;
}

function foldEnd(f: Fold, total: number): number {
  return Math.max(f.start, Math.min(f.end ?? total, total));
}

// Row index to seq, skipping the lines of folded steps (each fold keeps its first line).
function seqAt(index: number, folds: Fold[], total: number): number {
  let seq = index + 1;
  for (const f of folds) {
    if (seq > f.start) seq += foldEnd(f, total) - f.start;
    else break;
  }
  return seq;
}

function indexOfSeq(seq: number, folds: Fold[], total: number): number {
  let hidden = 0;
  for (const f of folds) {
    const end = foldEnd(f, total);
    if (seq > end) hidden += end - f.start;
    else if (seq > f.start) return f.start - 1 - hidden;
  }
  return seq - 1 - hidden;
}

function seqFromHash(): number | null {
  const m = /^#L(\d+)$/.exec(location.hash);
  return m ? Number(m[1]) : null;
}

function Message({ line, query }: { line: LogEntry; query: string }) {
  const pieces = parseLine(line.message);
  return (
    <span class={`msg ${line.stream}`}>
      {pieces.map((p, i) => {
        const style = p.color || p.background ? { color: p.color, background: p.background } : undefined;
        const text = query ? highlight(p.text, query) : p.text;
        return p.href ? (
          <a key={i} class={p.classes} style={style} href={p.href} target="_blank" rel="noopener noreferrer">
            {text}
          </a>
        ) : (
          <span key={i} class={p.classes || undefined} style={style}>
            {text}
          </span>
        );
      })}
    </span>
  );
}

function highlight(text: string, query: string) {
  const lower = text.toLowerCase();
  const q = query.toLowerCase();
  let at = lower.indexOf(q);
  if (at < 0) return text;
  const out: (string | preact.JSX.Element)[] = [];
  let last = 0;
  while (at >= 0) {
    out.push(text.slice(last, at), <mark>{text.slice(at, at + q.length)}</mark>);
    last = at + q.length;
    at = lower.indexOf(q, last);
  }
  out.push(text.slice(last));
  return out;
}

export function LogViewer({ run }: { run: Run }) {
  const model = useMemo(() => new LogModel(run.runid, run.driver), [run.runid, run.driver]);
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const scrollRef = useRef<HTMLDivElement>(null);
  const [following, setFollowing] = useState(() => seqFromHash() === null && !isTerminal(run.phase));
  const [selected, setSelected] = useState<number | null>(seqFromHash);
  const [showTimes, setShowTimes] = useState(false);
  const [folds, setFolds] = useState<Fold[]>([]);
  const [query, setQuery] = useState('');
  const [activeQuery, setActiveQuery] = useState('');
  const [status, setStatus] = useState('');
  const [opened, setOpened] = useState(false);
  const pendingScroll = useRef<number | null>(seqFromHash());

  useEffect(() => {
    const off = model.subscribe(() => rerender(0));
    model.open().then(
      () => setOpened(true),
      (err: Error) => setStatus(`Could not read the log: ${err.message}`),
    );
    return () => {
      off();
      model.close();
    };
  }, [model]);

  const total = model.total;
  const count = Math.max(0, total - folds.reduce((n, f) => n + (foldEnd(f, total) - f.start), 0));

  const virtualizer = useMemo(
    () =>
      new Virtualizer<HTMLDivElement, HTMLDivElement>({
        count: 0,
        getScrollElement: () => scrollRef.current,
        estimateSize: () => ROW,
        scrollToFn: elementScroll,
        observeElementRect,
        observeElementOffset,
        onChange: () => rerender(0),
        overscan: 20,
      }),
    [],
  );
  virtualizer.setOptions({ ...virtualizer.options, count });
  useLayoutEffect(() => virtualizer._didMount(), [virtualizer]);
  useLayoutEffect(() => virtualizer._willUpdate());

  // Follow the tail: after each render that added lines, the end is in view.
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el && following && count > 0) el.scrollTop = el.scrollHeight;
  });

  // A deep link (#L<seq>) or a found line: brought into view once the log is long enough.
  useLayoutEffect(() => {
    const seq = pendingScroll.current;
    if (seq === null || !opened || seq > total) return;
    pendingScroll.current = null;
    virtualizer.scrollToIndex(indexOfSeq(seq, folds, total), { align: 'center' });
  });

  useEffect(() => {
    const onHash = () => {
      const seq = seqFromHash();
      if (seq === null) return;
      setSelected(seq);
      setFollowing(false);
      pendingScroll.current = seq;
      rerender(0);
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  const onScroll = () => {
    const el = scrollRef.current!;
    const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < ROW * 2;
    if (following && !atEnd) setFollowing(false);
    else if (!following && atEnd && !model.ended && selected === null) setFollowing(true);
  };

  const jumpTo = (seq: number) => {
    setFollowing(false);
    setSelected(seq);
    pendingScroll.current = seq;
    history.replaceState(null, '', `#L${seq}`);
    rerender(0);
  };

  const toEnd = () => {
    setSelected(null);
    history.replaceState(null, '', location.pathname + location.search);
    setFollowing(true);
    const el = scrollRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  };

  const toggleFold = async (step: string, start: number) => {
    if (folds.some((f) => f.step === step && f.start === start)) {
      setFolds(folds.filter((f) => !(f.step === step && f.start === start)));
      return;
    }
    const names = run.steps.map((s) => s.name);
    const next = names[names.indexOf(step) + 1];
    const nextStart = next ? await model.findStepStart(next, start) : undefined;
    const fold: Fold = { step, start, end: nextStart ? nextStart - 1 : isTerminal(run.phase) ? total : null };
    setFolds([...folds, fold].sort((a, b) => a.start - b.start));
  };

  const search = async (event: Event) => {
    event.preventDefault();
    const text = query.trim();
    setActiveQuery(text);
    if (!text) return;
    setStatus('Searching…');
    try {
      const from = selected ?? seqAt(Math.max(0, virtualizer.range?.startIndex ?? 0), folds, total) - 1;
      const seq = (await model.findNext(text, from)) ?? (from > 0 ? await model.findNext(text, 0) : undefined);
      if (seq === undefined) {
        setStatus(`No line contains “${text}”`);
        return;
      }
      setFolds(folds.filter((f) => !(seq > f.start && seq <= foldEnd(f, total))));
      setStatus(`Line ${seq}`);
      jumpTo(seq);
    } catch (err) {
      setStatus(`Search failed: ${(err as Error).message}`);
    }
  };

  const download = async () => {
    setStatus('Preparing the download…');
    try {
      const blob = await model.download((done) => setStatus(`Preparing the download… ${done} lines`));
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `${run.name}-${run.runid}.log`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setStatus('Downloaded');
    } catch (err) {
      setStatus(`Download failed: ${(err as Error).message}`);
    }
  };

  const onKey = (event: KeyboardEvent) => {
    if (event.key === 'End' && !event.shiftKey) {
      event.preventDefault();
      toEnd();
    } else if (event.key === 'Home' && !event.shiftKey) {
      event.preventDefault();
      setFollowing(false);
      virtualizer.scrollToIndex(0, { align: 'start' });
    }
  };

  const items = virtualizer.getVirtualItems();
  const live = !model.ended && !isTerminal(run.phase);
  return (
    <section class="log" aria-labelledby="log-title">
      <div class="log-bar">
        <h2 id="log-title">Log</h2>
        <form class="log-search" role="search" onSubmit={search}>
          <label for="log-query" class="sr-only">Search the log</label>
          <input id="log-query" type="search" placeholder="Search the log" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
          <button type="submit">Find next</button>
        </form>
        <label class="check">
          <input type="checkbox" checked={showTimes} onChange={(e) => setShowTimes((e.target as HTMLInputElement).checked)} /> Timestamps
        </label>
        <button type="button" onClick={toEnd} aria-pressed={following} title="Jump to the end and follow new lines (End)">
          {following ? 'Following' : 'Follow'}
        </button>
        <button type="button" onClick={download}>Download</button>
      </div>
      <p class="log-status" role="status" aria-live="polite" data-testid="log-status">
        <span data-testid="log-count">{total}</span> lines{live ? ' · live' : ' · complete'}
        {model.error ? ` · ${model.error}` : ''}
        {status ? ` · ${status}` : ''}
      </p>
      <div
        class={`log-view${showTimes ? ' with-times' : ''}`}
        ref={scrollRef}
        tabIndex={0}
        role="log"
        aria-label={`Log of run ${run.runid}, ${total} lines; End follows the tail, Home goes to the top`}
        onScroll={onScroll}
        onKeyDown={onKey}
        data-testid="log-view"
        style={{ '--ln-width': `${String(total).length + 1}ch` }}
      >
        <div class="log-rows" style={{ height: `${virtualizer.getTotalSize()}px` }}>
          {items.map((item) => {
            const seq = seqAt(item.index, folds, total);
            const line = model.get(seq);
            const fold = folds.find((f) => f.start === seq);
            const isStepStart = line?.step && line.stream === 'system' && line.message.startsWith('Executing step: ');
            return (
              <div key={seq} class={`line${seq === selected ? ' selected' : ''}${line ? '' : ' loading'}`} id={`L${seq}`} data-seq={seq} style={{ transform: `translateY(${item.start}px)` }}>
                <a class="ln" href={`#L${seq}`} tabIndex={-1} onClick={(e) => { e.preventDefault(); jumpTo(seq); }} aria-label={`Line ${seq}`}>
                  {seq}
                </a>
                {showTimes && <span class="ts">{line ? lineTime(line.timestamp) : ''}</span>}
                {isStepStart ? (
                  <button type="button" class="fold" aria-expanded={!fold} onClick={() => void toggleFold(line.step!, seq)} title={fold ? 'Show this step' : 'Fold this step'}>
                    {fold ? '▸' : '▾'}
                  </button>
                ) : (
                  <span class="fold-space" />
                )}
                {line ? <Message line={line} query={activeQuery} /> : <span class="msg">…</span>}
                {fold && <span class="folded">{foldEnd(fold, total) - fold.start} lines folded</span>}
              </div>
            );
          })}
        </div>
        {opened && total === 0 && <p class="log-empty">{live ? 'Waiting for the first line…' : 'This run has no log lines.'}</p>}
      </div>
    </section>
  );
}
