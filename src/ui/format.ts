// Times and durations as people read them.
export function duration(from: string | null, to: string | null, now = Date.now()): string {
  if (!from) return '—';
  const ms = Math.max(0, (to ? Date.parse(to) : now) - Date.parse(from));
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function when(iso: string | null): string {
  if (!iso) return '—';
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

/** A log line's nanosecond timestamp as local time with milliseconds. */
export function lineTime(nanos: string): string {
  const d = new Date(Number(BigInt(nanos) / 1_000_000n));
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export const shortId = (runid: string) => runid.slice(0, 8);
