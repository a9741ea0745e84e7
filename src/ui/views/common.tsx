// Small pieces shared by the views.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { RunPhase, StepStatus } from '../types.ts';

export function PhaseBadge({ phase }: { phase: RunPhase | StepStatus['phase'] }) {
  return (
    <span class={`badge phase-${phase.toLowerCase()}`} data-phase={phase}>
      <span class="dot" aria-hidden="true" />
      {phase}
    </span>
  );
}

export function ErrorNote({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/** Re-renders every second while `active`, for running durations. */
export function useTicker(active: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [active]);
  return now;
}

export function Page({ title, children, actions, level = 1 }: { title: ComponentChildren; children: ComponentChildren; actions?: ComponentChildren; level?: 1 | 2 }) {
  const Heading = level === 1 ? 'h1' : 'h2';
  return (
    <>
      <div class="page-head">
        <Heading>{title}</Heading>
        {actions && <div class="actions">{actions}</div>}
      </div>
      {children}
    </>
  );
}
