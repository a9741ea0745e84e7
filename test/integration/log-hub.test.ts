// The log hub over a real archive (node:sqlite in a temporary directory): an archive write
// that fails inside the hub's flush loses no line, skips no seq, and crashes nothing.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { randomUUID } from 'node:crypto';
import { LogArchive, LogHub, LogHubClosedError } from '../../src/logs/index.ts';
import { openDatabase } from '../../src/store/embedded/index.ts';
import type { LogLine } from '../../src/domain/index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('log hub over a real archive', () => {
  let dir: string;
  let db: DatabaseSync;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-hub-'));
    db = openDatabase(dir);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const line = (message: string) => ({ driver: 'command-runner', pipeline: 'p', step: 's', stream: 'stdout' as const, message });

  it('keeps and retries a batch whose archive write failed: no uncaught error, no lost line, no gap in seq', async () => {
    const errors: Error[] = [];
    const archive = new LogArchive(db);
    const runid = randomUUID();
    let ended = false;
    const hub = new LogHub(archive, async () => ended, { onArchiveError: (err) => errors.push(err) });
    const got: LogLine[] = [];
    const following = (async () => {
      for await (const batch of hub.follow(runid)) got.push(...batch);
    })();

    hub.append(runid, line('one'));
    await sleep(20);
    expect(got.map((l) => l.message)).to.deep.equal(['one']);

    // The disk "fills up": every insert fails until the trigger goes.
    db.exec(`CREATE TRIGGER full BEFORE INSERT ON log_lines BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;`);
    hub.append(runid, line('two'));
    hub.append(runid, line('three'));
    await sleep(150);
    expect(errors.length, 'the failure is surfaced').to.be.at.least(1);
    expect(errors[0]!.message).to.include('disk is full');
    expect(got.map((l) => l.message), 'followers see only committed lines').to.deep.equal(['one']);
    hub.append(runid, line('four'));
    hub.end(runid); // the run ends while its last lines still wait for the archive
    ended = true;

    db.exec('DROP TRIGGER full');
    await following;
    expect(got.map((l) => [l.seq, l.message])).to.deep.equal([
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
      [4, 'four'],
    ]);
    expect(archive.read(runid, 0, 100).map((l) => l.seq)).to.deep.equal([1, 2, 3, 4]);
    hub.close();
  });

  it('shows writers the backlog while the archive fails, and tells them when it is committed', async () => {
    const archive = new LogArchive(db);
    const runid = randomUUID();
    const hub = new LogHub(archive, async () => false, { onArchiveError: () => undefined });
    db.exec(`CREATE TRIGGER full BEFORE INSERT ON log_lines BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;`);
    for (let i = 0; i < 100; i++) hub.append(runid, line('x'.repeat(1000)));
    await sleep(20);
    expect(hub.backlogBytes).to.equal(100_000);
    let committed = false;
    const waiting = hub.committedSoon().then(() => (committed = true));
    await sleep(100);
    expect(committed, 'not while the archive fails').to.equal(false);
    db.exec('DROP TRIGGER full');
    await waiting;
    expect(hub.backlogBytes).to.equal(0);
    expect(archive.lastSeq(runid)).to.equal(100);
    hub.close();
  });

  it('tells followers of a log that has not ended that the server is stopping, not that the run ended', async () => {
    const archive = new LogArchive(db);
    const runid = randomUUID();
    const hub = new LogHub(archive, async () => false);
    hub.append(runid, line('before'));
    const got: string[] = [];
    const following = (async () => {
      for await (const batch of hub.follow(runid)) got.push(...batch.map((l) => l.message));
    })();
    await sleep(20);
    hub.close();
    let error: unknown;
    await following.catch((err) => (error = err));
    expect(got).to.deep.equal(['before']);
    expect(error).to.be.instanceOf(LogHubClosedError);
  });

  it('serves lines of any length in batches bounded in bytes', async () => {
    const archive = new LogArchive(db);
    const runid = randomUUID();
    const hub = new LogHub(archive, async () => true, { readBytes: 1024 * 1024, windowBytes: 2 * 1024 * 1024 });
    const big = 'x'.repeat(512 * 1024);
    for (let i = 0; i < 12; i++) hub.append(runid, line(`${i}${big}`));
    hub.end(runid);
    const batches: number[] = [];
    for await (const batch of hub.follow(runid)) batches.push(batch.reduce((n, l) => n + l.message.length, 0));
    expect(batches.reduce((a, b) => a + b, 0)).to.equal(12 * (big.length + 1) + 2);
    expect(Math.max(...batches)).to.be.at.most(2 * (big.length + 2));
    hub.close();
  });
});
