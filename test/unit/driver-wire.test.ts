// Upstream's driver wire (pure parsing) and the deduplication of lines sent twice.
import { expect } from 'chai';
import { LineDeduper } from '../../src/drivers/nats/line-deduper.ts';
import { parseDriverLog, parseDriverResult, parseLegacyLog, parseLokiPush, subjectMatches, typesOfFilters } from '../../src/drivers/nats/wire.ts';

const now = () => 1_700_000_000_000_000_000n;

describe('driver wire', () => {
  it('reads current-generation lines, with RFC 3339 or numeric timestamps', () => {
    const line = parseDriverLog({ runid: 'r', driver: 'd', pipeline: 'p', timestamp: '2025-01-02T03:04:05.123456789Z', message: 'hi' }, now)!;
    expect(line).to.include({ runid: 'r', driver: 'd', message: 'hi', ts: '1735787045123456789' });
    expect(parseDriverLog({ runid: 'r', driver: 'd', timestamp: '1735787045', message: 'x' }, now)!.ts).to.equal('1735787045000000000');
    expect(parseDriverLog({ runid: 'r', driver: 'd', message: 'x' }, now)!.ts).to.equal(String(now()));
    expect(parseDriverLog({ runid: 'r', message: 'x' }, now)).to.equal(undefined);
    expect(parseDriverLog('nope', now)).to.equal(undefined);
  });

  it('reads older-generation lines from their subject, and their Loki copies', () => {
    expect(parseLegacyLog('driver:py:logs:abc', ['1735787045', 'hello'], now)).to.deep.equal({ driver: 'py', runid: 'abc', message: 'hello', ts: '1735787045000000000', key: 'hello' });
    expect(parseLegacyLog('other', ['1', 'x'], now)).to.equal(undefined);
    const lines = parseLokiPush({ streams: [{ stream: { driver: 'py', run_id: 'abc', level: 'INFO' }, values: [['1735787045123456789', 'hello']] }] }, now);
    expect(lines).to.deep.equal([{ driver: 'py', runid: 'abc', message: 'hello', ts: '1735787045123456789', key: 'hello' }]);
    expect(parseLokiPush({ streams: 'x' })).to.equal('streams must be an array');
    expect(parseLokiPush({ streams: [{ stream: { driver: 'a', run_id: 'b' }, values: [[1]] }] })).to.equal('streams[0].values[0] must be [timestamp, line]');
  });

  it('reads results', () => {
    const r = parseDriverResult({ event: 'driver.result', run_id: 'r', resource: {}, driverresult: { success: false, message: 'm', data: { a: 1 }, driver: 'd' } });
    expect(r).to.deep.equal({ runid: 'r', driver: 'd', success: false, message: 'm', data: { a: 1 } });
    expect(parseDriverResult({ run_id: 'r' })).to.equal(undefined);
  });

  it('matches subjects and names the types a consumer serves', () => {
    expect(subjectMatches('resources.*', 'resources.widget')).to.equal(true);
    expect(subjectMatches('resources.>', 'resources.a.b')).to.equal(true);
    expect(subjectMatches('resources.widget', 'resources.gadget')).to.equal(false);
    expect(subjectMatches('drivers.b.resources.g', 'drivers.b.resources.g')).to.equal(true);
    expect(typesOfFilters(['resources.widget', 'drivers.b.resources.gadget'])).to.deep.equal(['gadget', 'widget']);
    expect(typesOfFilters([])).to.deep.equal(['*']);
  });
});

describe('LineDeduper', () => {
  it('keeps the first copy of each line, whichever route it came by, and repeats as repeats', () => {
    const d = new LineDeduper();
    const seen = [
      d.accept('live', 'r', 'd', 'a'),
      d.accept('jetstream', 'r', 'd', 'a'),
      d.accept('jetstream', 'r', 'd', 'a'), // the driver's second "a"
      d.accept('live', 'r', 'd', 'a'),
      d.accept('jetstream', 'r', 'other', 'a'),
    ];
    expect(seen).to.deep.equal([true, false, true, false, true]);
    d.forget('r');
    expect(d.size).to.equal(0);
  });
});
