// Routes of the page, all under /ui/: history navigation without reloads, deep links that
// the server answers with the same page.
export type Route =
  | { view: 'runs'; name?: string; phase?: string }
  | { view: 'run'; runid: string }
  | { view: 'pipelines' }
  | { view: 'pipeline'; name: string }
  | { view: 'new-pipeline' }
  | { view: 'not-found' };

export function parseRoute(url: URL): Route {
  const parts = url.pathname.replace(/^\/ui\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0 || (parts[0] === 'runs' && parts.length === 1)) {
    return { view: 'runs', name: url.searchParams.get('pipeline') ?? undefined, phase: url.searchParams.get('phase') ?? undefined };
  }
  if (parts[0] === 'runs' && parts.length === 2) return { view: 'run', runid: parts[1]! };
  if (parts[0] === 'pipelines' && parts.length === 1) return { view: 'pipelines' };
  if (parts[0] === 'pipelines' && parts[1] === '-' && parts[2] === 'new') return { view: 'new-pipeline' };
  if (parts[0] === 'pipelines' && parts.length === 2) return { view: 'pipeline', name: parts[1]! };
  return { view: 'not-found' };
}

const listeners = new Set<() => void>();

export function navigate(href: string, replace = false): void {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  listeners.forEach((l) => l());
  if (!href.includes('#')) window.scrollTo(0, 0);
}

export function onNavigate(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}

/** Same-page links: plain clicks navigate in place, modified clicks keep the browser's way. */
export function linkClick(event: MouseEvent): void {
  const anchor = (event.target as Element).closest('a');
  if (!anchor || anchor.target || anchor.origin !== location.origin || !anchor.pathname.startsWith('/ui/')) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search + anchor.hash);
}
