// How a step container takes its turn, and what it reports when it ends.
//
// Every step of a run is a regular container of one pod, so the kubelet starts them all
// together at pod start instead of one init container per 1 s sync loop. Each runs this
// POSIX shell script (in the pipeline's own image: `/bin/sh` is all a step needs, as
// before) with its step number and command:
//   1. it records its pid in the steps directory, an emptyDir shared by the step
//      containers, so that the next step can tell it is alive;
//   2. step k > 1 waits for `<k-1>.done`, polling every 50 ms for 2 s, then every 250 ms
//      (a long wait costs few wake-ups: each poll of a shell without a builtin `sleep` is a
//      process; the rest of the loop is builtins); if step k-1 did not end
//      with 0, step k is skipped: it reports so and exits 0 at once; if step k-1 died
//      without a word (its pid gone, no `.done`: an OOM kill of the script itself), step
//      k reports the same and exits 1, so that such a pod can never count as succeeded;
//   3. it runs the command as `/bin/sh -c "<command>"` in a child, forwards SIGTERM to
//      it (a cancel or a timeout), and waits;
//   4. it writes its report, `{"exitCode":N,"startedAt":"S","finishedAt":"S"}` with epoch
//      seconds (nanoseconds where the image's `date` has `%N`), as the container's
//      termination message, which the kubelet copies into the pod status: structured
//      data, never parsed from log text;
//   5. it writes `<k>.done` (atomically, by rename) and exits with the command's code.
// The script prints nothing itself (its own stderr, where the shell would report a
// command killed by the stop, goes to /dev/null), so a step's container log is exactly
// its command's output. The pod shares one process namespace (the pid check of step 2 needs it).
import type { V1ContainerStateTerminated } from '@kubernetes/client-node';
import { literal } from '../../../kube/literal.ts';

export const STEPS_VOLUME = 'conveyor-steps';
export const STEPS_PATH = '/conveyor/steps';
// The argv[0] of the script, shown by `ps` in the pod.
export const ENTRYPOINT_NAME = 'conveyor-step';

export const STEP_ENTRYPOINT = `exec 3>&2 2>/dev/null; d=${STEPS_PATH}; k=$1
now() { t=$(date -u +%s.%N); case $t in *[!0-9.]*|*.) date -u +%s ;; *) echo "$t" ;; esac; }
report() { printf '%s' "$1" > /dev/termination-log; printf '%s' "$2" > "$d/$k.tmp" && mv "$d/$k.tmp" "$d/$k.done"; }
echo $$ > "$d/$k.pid"
if [ "$k" -gt 1 ]; then
  p=$((k - 1)); n=0; q=
  until [ -e "$d/$p.done" ]; do
    [ -z "$q" ] && [ -e "$d/$p.pid" ] && read -r q < "$d/$p.pid"
    if [ -n "$q" ] && [ ! -d "/proc/$q" ] && [ ! -e "$d/$p.done" ]; then
      report '{"skipped":true,"previousLost":true}' lost; exit 1
    fi
    n=$((n + 1))
    if [ "$n" -le 40 ]; then sleep 0.05 || sleep 1; else sleep 0.25 || sleep 1; fi
  done
  read -r r < "$d/$p.done"
  if [ "$r" != 0 ]; then report '{"skipped":true}' skipped; exit 0; fi
fi
s=$(now)
/bin/sh -c "$2" 2>&3 3>&- &
c=$!
trap 'kill -TERM "$c"' TERM INT
wait "$c"; x=$?
while kill -0 "$c"; do wait "$c"; x=$?; done
report "{\\"exitCode\\":$x,\\"startedAt\\":\\"$s\\",\\"finishedAt\\":\\"$(now)\\"}" "$x"
exit "$x"`;

// The script and the step's command reach the shell as written (see kube/literal.ts).
const ESCAPED_ENTRYPOINT = literal(STEP_ENTRYPOINT);

/** The container command of step `number` (1-based) running `command`. */
export function stepCommand(number: number, command: string): string[] {
  return ['/bin/sh', '-c', ESCAPED_ENTRYPOINT, ENTRYPOINT_NAME, String(number), literal(command)];
}

/** The container command of a step that runs as an init container (the sequential model). */
export function sequentialStepCommand(command: string): string[] {
  return ['/bin/sh', '-c', literal(command)];
}

// What a step container said when it ended: it ran (exit code and times), or it was
// skipped because an earlier step failed or was lost.
export type StepReport =
  | { ran: true; exitCode: number; startedAt: string | null; finishedAt: string | null }
  | { ran: false };

// "1796170513" or "1796170513.123456789" (epoch seconds) to ISO 8601 with milliseconds.
function isoFromEpoch(value: unknown): string | null {
  if (typeof value !== 'string' || !/^\d{1,12}(\.\d+)?$/.test(value)) return null;
  const [seconds, fraction = ''] = value.split('.');
  const ms = Number(seconds) * 1000 + Number((fraction + '000').slice(0, 3));
  return new Date(ms).toISOString();
}

/**
 * The report in a terminated step container's termination message, or undefined when it
 * has none (the container was killed before it could write one) or it is not one of ours.
 */
export function stepReport(terminated: Pick<V1ContainerStateTerminated, 'message'> | undefined): StepReport | undefined {
  const message = terminated?.message;
  if (!message) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const report = parsed as Record<string, unknown>;
  if (report.skipped === true) return { ran: false };
  if (typeof report.exitCode !== 'number' || !Number.isInteger(report.exitCode)) return undefined;
  return { ran: true, exitCode: report.exitCode, startedAt: isoFromEpoch(report.startedAt), finishedAt: isoFromEpoch(report.finishedAt) };
}
