// The step entrypoint of Kubernetes mode (src/drivers/command-runner/kubernetes/
// step-entrypoint.ts), run by real shells on this machine: Debian's busybox `sh` (the test
// image's shell, whose `date` has no %N) and dash. Only its two paths differ from a pod:
// the steps directory and the termination message file are temporary files here. The
// cluster tier runs it in real pods (test/cluster/kubernetes-mode.test.ts).
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STEPS_PATH, STEP_ENTRYPOINT, stepReport, type StepReport } from '../../src/drivers/command-runner/kubernetes/step-entrypoint.ts';

const SHELLS = ['/bin/busybox', '/bin/dash'].filter((shell) => existsSync(shell));

interface Step {
  child: ChildProcess;
  output: string;
  exit: Promise<number | null>;
  report: () => StepReport | undefined;
}

describe('kubernetes step entrypoint, under real shells', function () {
  this.timeout(30_000);
  let dir: string;
  const groups: number[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-steps-'));
  });
  afterEach(() => {
    for (const pgid of groups.splice(0)) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // the group has ended
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('has shells to run under', () => {
    expect(SHELLS, 'busybox-static or dash is installed').to.not.be.empty;
  });

  for (const shell of SHELLS) {
    const argv = (script: string) => (shell.endsWith('busybox') ? [shell, ['sh', '-c', script]] : [shell, ['-c', script]]) as [string, string[]];

    // Step `number` of a pod whose steps directory is `dir`, as a process of its own.
    const start = (number: number, command: string): Step => {
      const script = STEP_ENTRYPOINT.replaceAll(STEPS_PATH, dir).replaceAll('/dev/termination-log', join(dir, `${number}.message`));
      const [file, args] = argv(script);
      // Its own process group, as a container's processes are its own: all killed after.
      const child = spawn(file, [...args, 'conveyor-step', String(number), command], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      groups.push(child.pid!);
      const step: Step = {
        child,
        output: '',
        exit: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null)))),
        report: () => (existsSync(join(dir, `${number}.message`)) ? stepReport({ message: readFileSync(join(dir, `${number}.message`), 'utf8') }) : undefined),
      };
      child.stdout!.on('data', (chunk: Buffer) => (step.output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (step.output += chunk.toString()));
      return step;
    };

    describe(shell, () => {
      it('runs the steps in turn: each waits for the one before, prints only its own output, and reports its code and times', async () => {
        // Started in reverse order: the turns, not the start order, decide.
        const three = start(3, 'cat turns; echo 3 >> turns');
        const two = start(2, 'cat turns; echo 2 >> turns; echo err >&2');
        const one = start(1, 'sleep 0.3; echo 1 > turns');
        expect(await Promise.all([one.exit, two.exit, three.exit])).to.deep.equal([0, 0, 0]);
        expect([one.output, two.output, three.output]).to.deep.equal(['', '1\nerr\n', '1\n2\n']);
        const reports = [one, two, three].map((s) => s.report());
        for (const report of reports) expect(report).to.include({ ran: true, exitCode: 0 });
        const times = reports.map((r) => (r?.ran ? [r.startedAt!, r.finishedAt!] : []));
        for (const [i, [began, ended]] of times.entries()) {
          expect(began! <= ended!).to.equal(true);
          if (i > 0) expect(times[i - 1]![1]! <= began!, `step ${i + 1} starts after step ${i} ended`).to.equal(true);
        }
        if (shell.endsWith('busybox')) {
          // busybox's date has no %N: the report falls back to whole seconds.
          for (const stamp of times.flat()) expect(stamp, 'a whole second').to.match(/\.000Z$/);
        } else {
          expect(Date.parse(times[0]![1]!) - Date.parse(times[0]![0]!), 'with %N, the 0.3 s sleep shows').to.be.at.least(250);
        }
      });

      it('skips every step after a failure: they run nothing, report skipped and exit 0; the failed step keeps its code', async () => {
        const steps = [start(1, 'exit 7'), start(2, 'echo never'), start(3, 'echo never')];
        expect(await Promise.all(steps.map((s) => s.exit))).to.deep.equal([7, 0, 0]);
        expect(steps.map((s) => s.output)).to.deep.equal(['', '', '']);
        expect(steps[0]!.report()).to.include({ ran: true, exitCode: 7 });
        expect(steps.slice(1).map((s) => s.report())).to.deep.equal([{ ran: false }, { ran: false }]);
      });

      it('forwards SIGTERM (a cancel) to the command and reports the code it died with', async () => {
        const one = start(1, 'echo started; sleep 30');
        const two = start(2, 'echo never');
        while (!one.output.includes('started')) await new Promise((r) => setTimeout(r, 20));
        one.child.kill('SIGTERM');
        expect(await one.exit).to.equal(143);
        expect(one.report()).to.include({ ran: true, exitCode: 143 });
        expect(one.output, "the shell's own notice of the killed command is not in the step's log").to.equal('started\n');
        expect(await two.exit).to.equal(0);
        expect(two.report()).to.deep.equal({ ran: false });
      });

      it('fails the next step when the one before died without a word (SIGKILL of its entrypoint)', async () => {
        const one = start(1, 'sleep 30');
        const two = start(2, 'echo never');
        while (!existsSync(join(dir, '1.pid'))) await new Promise((r) => setTimeout(r, 20));
        one.child.kill('SIGKILL');
        expect(await two.exit, 'a lost step can never let the pod succeed').to.equal(1);
        expect(two.output).to.equal('');
        expect(two.report()).to.deep.equal({ ran: false });
      });
    });
  }
});
