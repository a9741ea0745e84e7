import { expect } from 'chai';
import {
  colorEnabled,
  createStyle,
  formatDefinitionsTable,
  formatDuration,
  formatFields,
  formatLogLine,
  formatResource,
  formatResourcesTable,
  formatRun,
  formatRunResult,
  formatRunsTable,
  formatSubmitResult,
  formatTable,
  formatTime,
  type RunView,
} from '../../src/cli/output.ts';

const ESC = '\u001b[';
const color = createStyle(true);
const plain = createStyle(false);

const run: RunView = {
  runid: '0b7c7a36-5a43-4e8a-9d0f-2f1a0c3e4d5f',
  resource: 'pipeline',
  name: 'build',
  version: 2,
  driver: 'command-runner',
  phase: 'Failed',
  reason: 'StepFailed',
  message: 'step test failed with exit code 3',
  createdAt: '2026-01-02T03:04:04.900Z',
  startedAt: '2026-01-02T03:04:05.000Z',
  finishedAt: '2026-01-02T03:04:07.500Z',
  steps: [
    { name: 'compile', phase: 'Succeeded', exitCode: 0, startedAt: '2026-01-02T03:04:05.000Z', finishedAt: '2026-01-02T03:04:06.000Z' },
    { name: 'test', phase: 'Failed', exitCode: 3, startedAt: '2026-01-02T03:04:06.000Z', finishedAt: '2026-01-02T03:04:07.500Z' },
    { name: 'publish', phase: 'Skipped', exitCode: null, startedAt: null, finishedAt: null },
  ],
};

describe('cli output: when to color', () => {
  it('colors a TTY and nothing else', () => {
    expect(colorEnabled(true, {})).to.equal(true);
    expect(colorEnabled(false, {})).to.equal(false);
    expect(colorEnabled(undefined, {})).to.equal(false);
  });

  it('NO_COLOR (any non-empty value) turns color off even on a TTY and even with FORCE_COLOR', () => {
    expect(colorEnabled(true, { NO_COLOR: '1' })).to.equal(false);
    expect(colorEnabled(true, { NO_COLOR: 'yes', FORCE_COLOR: '1' })).to.equal(false);
    // no-color.org: an empty NO_COLOR is as if unset
    expect(colorEnabled(true, { NO_COLOR: '' })).to.equal(true);
  });

  it('FORCE_COLOR colors a pipe, unless it is empty or 0; TERM=dumb gets none', () => {
    expect(colorEnabled(false, { FORCE_COLOR: '1' })).to.equal(true);
    expect(colorEnabled(false, { FORCE_COLOR: '0' })).to.equal(false);
    expect(colorEnabled(false, { FORCE_COLOR: '' })).to.equal(false);
    expect(colorEnabled(true, { TERM: 'dumb' })).to.equal(false);
  });

  it('a disabled style returns text unchanged; an enabled one wraps it in SGR codes that reset', () => {
    expect(plain.bold(plain.cyan('x'))).to.equal('x');
    expect(color.bold('x')).to.equal(`${ESC}1mx${ESC}22m`);
    expect(color.cyan('x')).to.equal(`${ESC}36mx${ESC}39m`);
  });
});

describe('cli output: log lines', () => {
  it('makes step headers bold cyan on a terminal, leaving the message text intact', () => {
    const out = formatLogLine({ message: 'Executing step: build', stream: 'system', step: 'build' }, color);
    expect(out).to.equal(`${ESC}1m${ESC}36mExecuting step: build${ESC}39m${ESC}22m`);
    expect(out.replace(/\u001b\[\d+m/g, '')).to.equal('Executing step: build');
  });

  it('recognises a header by its text whatever the stream says (lines from GET /logs or other drivers)', () => {
    expect(formatLogLine({ message: 'Executing step: x' }, color)).to.contain(`${ESC}36m`);
  });

  it('shows step results green and red, stderr dimmed, stdout verbatim', () => {
    expect(formatLogLine({ message: 'Step completed successfully', stream: 'system' }, color)).to.equal(`${ESC}32mStep completed successfully${ESC}39m`);
    expect(formatLogLine({ message: 'Step failed with exit code 2', stream: 'system' }, color)).to.contain(`${ESC}31m`);
    expect(formatLogLine({ message: 'warning: x', stream: 'stderr' }, color)).to.equal(`${ESC}2mwarning: x${ESC}22m`);
    expect(formatLogLine({ message: 'hello  world ', stream: 'stdout' }, color)).to.equal('hello  world ');
  });

  it('emits no escape codes at all when color is off', () => {
    const lines = [
      { message: 'Executing step: a', stream: 'system' },
      { message: 'Step completed successfully', stream: 'system' },
      { message: 'Step failed with exit code 1', stream: 'system' },
      { message: 'Run cancelled', stream: 'system' },
      { message: 'oops', stream: 'stderr' },
      { message: 'ok', stream: 'stdout' },
    ];
    for (const line of lines) expect(formatLogLine(line, plain)).to.equal(line.message);
    expect(formatRunResult(run, plain)).to.not.contain('\u001b');
    expect(formatRun(run, plain)).to.not.contain('\u001b');
  });
});

describe('cli output: tables and views', () => {
  it('aligns columns two spaces apart with no trailing spaces, and shows missing cells as -', () => {
    const table = formatTable(['NAME', 'PHASE', 'NOTE'], [
      ['a', 'Running', null],
      ['longer-name', 'Succeeded', 'multi\nline'],
    ]);
    expect(table.split('\n')).to.deep.equal([
      'NAME         PHASE      NOTE',
      'a            Running    -',
      'longer-name  Succeeded  multi line',
    ]);
  });

  it('prints only the header for an empty table', () => {
    expect(formatTable(['A', 'B'], [])).to.equal('A  B');
  });

  it('lists runs with RUNID, RESOURCE, NAME, PHASE, STARTED', () => {
    const lines = formatRunsTable([run, { ...run, runid: 'r2', phase: 'Pending', startedAt: null }]).split('\n');
    expect(lines[0]!.split(/\s+/)).to.deep.equal(['RUNID', 'RESOURCE', 'NAME', 'PHASE', 'STARTED']);
    expect(lines[1]!.split(/\s+/)).to.deep.equal([run.runid, 'pipeline', 'build', 'Failed', '2026-01-02', '03:04:05']);
    expect(lines[2]!.split(/\s+/)).to.deep.equal(['r2', 'pipeline', 'build', 'Pending', '-']);
  });

  it('shows one run with its fields and a step table', () => {
    const text = formatRun(run, plain);
    expect(text).to.match(/^Run: +0b7c7a36/m);
    expect(text).to.match(/^Resource: +pipeline\/build \(version 2\)$/m);
    expect(text).to.match(/^Phase: +Failed$/m);
    expect(text).to.match(/^Message: +step test failed with exit code 3$/m);
    expect(text).to.match(/^Duration: +2\.5s$/m);
    expect(text).to.match(/^ {2}test +Failed +3 +2026-01-02 03:04:06 +1\.5s$/m);
    expect(text).to.match(/^ {2}publish +Skipped +- +- +-$/m);
  });

  it('lists resources with a STEPS column only when specs have steps', () => {
    const meta = { version: 3, createdAt: '2026-01-02T03:04:05Z', updatedAt: '2026-01-03T00:00:00Z' };
    const withSteps = formatResourcesTable([{ name: 'p', resource: 'pipeline', spec: { steps: [{}, {}] }, metadata: meta }]);
    expect(withSteps.split('\n')).to.deep.equal(['NAME  VERSION  STEPS  UPDATED', 'p     3        2      2026-01-03 00:00:00']);
    const without = formatResourcesTable([{ name: 'c', resource: 'custom', spec: { x: 1 }, metadata: meta }]);
    expect(without.split('\n')[0]).to.equal('NAME  VERSION  UPDATED');
  });

  it('shows one resource with its spec as JSON and its recent runs', () => {
    const text = formatResource(
      { name: 'build', resource: 'pipeline', spec: { steps: [{ name: 'a', command: 'echo hi' }] }, metadata: { version: 2 } },
      [run],
      plain,
    );
    expect(text).to.match(/^Name: +build$/m);
    expect(text).to.match(/^Version: +2$/m);
    expect(text).to.contain('    "command": "echo hi"');
    expect(text).to.match(/^Recent runs:\n {2}RUNID +VERSION +PHASE +STARTED\n {2}0b7c7a36\S+ +2 +Failed/m);
  });

  it('lists definitions with whether they are built in', () => {
    const text = formatDefinitionsTable([{ name: 'pipeline', version: '1.0.0', builtIn: true, description: 'steps' }]);
    expect(text.split('\n')[1]).to.equal('pipeline  1.0.0    yes      steps');
  });

  it('aligns key/value fields', () => {
    expect(formatFields([['A', 1], ['Longer', null]])).to.equal('A:       1\nLonger:  -');
  });

  it('formats times to the second and durations readably', () => {
    expect(formatTime('2026-01-02T03:04:05.678Z')).to.equal('2026-01-02 03:04:05');
    expect(formatTime(null)).to.equal('-');
    expect(formatDuration('2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.250Z')).to.equal('250ms');
    expect(formatDuration('2026-01-02T03:04:05.000Z', '2026-01-02T03:06:10.000Z')).to.equal('2m5s');
    expect(formatDuration('2026-01-02T03:04:05.000Z', null)).to.equal('-');
  });

  it('says how a run ended, with its message', () => {
    expect(formatRunResult({ runid: 'r1', phase: 'Succeeded', message: 'Pipeline executed successfully' }, plain)).to.equal(
      'Run r1 Succeeded: Pipeline executed successfully',
    );
    expect(formatRunResult({ runid: 'r1', phase: 'Cancelled', reason: 'Cancelled', message: null }, plain)).to.equal('Run r1 Cancelled: Cancelled');
    expect(formatRunResult({ runid: 'r1', phase: 'Succeeded', message: null }, color)).to.contain(`${ESC}32m`);
  });

  it('names the run id whether a resource was created or replaced', () => {
    const base = { resource: 'pipeline', name: 'p', runid: 'r9' };
    expect(formatSubmitResult({ ...base, action: 'created', version: '1' })).to.equal('Created pipeline/p (version 1), run r9');
    expect(formatSubmitResult({ ...base, action: 'replaced', version: '2' })).to.equal(
      'Replaced pipeline/p, which already existed (now version 2); started run r9',
    );
  });
});
