// Conveyor's web page: a client of the public API only. Routes: /ui/ (runs), /ui/runs/<id>
// (#L<seq> for a line), /ui/pipelines, /ui/pipelines/<name>, /ui/pipelines/-/new.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { onAuthNeeded, setToken, token } from './api.ts';
import { linkClick, onNavigate, parseRoute, type Route } from './router.ts';
import { NewPipeline, PipelineList, PipelinePage } from './views/Pipelines.tsx';
import { RunList } from './views/RunList.tsx';
import { RunPage } from './views/RunPage.tsx';
import './styles.css';

function Login({ onDone }: { onDone: () => void }) {
  const [value, setValue] = useState('');
  return (
    <div class="login" role="dialog" aria-modal="true" aria-labelledby="login-title">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!value.trim()) return;
          setToken(value.trim());
          onDone();
        }}
      >
        <h1 id="login-title">Sign in to Conveyor</h1>
        <p>
          This server needs a bearer token{token() ? ' (the one given was refused)' : ''}. On Kubernetes, for example:{' '}
          <code>kubectl create token &lt;service-account&gt;</code>. It is kept for this tab only.
        </p>
        <label for="token">Token</label>
        <input id="token" type="password" autocomplete="off" autoFocus value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <div class="actions">
          <button class="primary" type="submit">
            Sign in
          </button>
        </div>
      </form>
    </div>
  );
}

function View({ route }: { route: Route }) {
  switch (route.view) {
    case 'runs':
      return <RunList name={route.name} phase={route.phase} />;
    case 'run':
      return <RunPage runid={route.runid} />;
    case 'pipelines':
      return <PipelineList />;
    case 'pipeline':
      return <PipelinePage name={route.name} />;
    case 'new-pipeline':
      return <NewPipeline />;
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>
            No page here. <a href="/ui/">See the runs</a>.
          </p>
        </>
      );
  }
}

function App() {
  const [url, setUrl] = useState(() => location.href);
  const [needsToken, setNeedsToken] = useState(false);
  // Pages re-mount after a sign-in, so that what failed with 401 is read again.
  const [session, setSession] = useState(0);
  useEffect(() => onNavigate(() => setUrl(location.href)), []);
  useEffect(() => onAuthNeeded((needed) => setNeedsToken(needed)), []);
  const route = parseRoute(new URL(url));
  const section = route.view === 'pipelines' || route.view === 'pipeline' || route.view === 'new-pipeline' ? 'pipelines' : 'runs';
  useEffect(() => {
    const h1 = document.querySelector('h1')?.textContent;
    document.title = h1 ? `${h1} · Conveyor` : 'Conveyor';
  });
  return (
    <div onClick={linkClick}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/ui/">
          Conveyor
        </a>
        <nav aria-label="Sections">
          <a href="/ui/" aria-current={section === 'runs' ? 'page' : undefined}>
            Runs
          </a>
          <a href="/ui/pipelines" aria-current={section === 'pipelines' ? 'page' : undefined}>
            Pipelines
          </a>
        </nav>
        {token() && (
          <button
            type="button"
            class="link"
            onClick={() => {
              setToken(null);
              setNeedsToken(true);
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {needsToken ? (
          <Login
            onDone={() => {
              setNeedsToken(false);
              setSession(session + 1);
            }}
          />
        ) : (
          <View key={`${session}:${route.view}:${'runid' in route ? route.runid : ''}:${'name' in route ? route.name : ''}`} route={route} />
        )}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
