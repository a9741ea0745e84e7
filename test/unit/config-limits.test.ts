// Settings that become timers are refused beyond what a timer can wait (2^31-1 ms): a longer
// one would fire at once, turning a long grace period into none.
import { expect } from 'chai';
import { resolveConfig } from '../../src/config.ts';

describe('config: numbers the runtime can honour', () => {
  it('takes a shutdown grace up to 2,147,483 s and refuses more, naming the setting', () => {
    expect(resolveConfig({ shutdownGrace: '2147483' }, {}).shutdownGraceMs).to.equal(2_147_483_000);
    expect(() => resolveConfig({ shutdownGrace: '2147484' }, {})).to.throw(/--shutdown-grace must be a whole number from 0 to 2147483/);
  });

  it('refuses an SSE heartbeat longer than a timer can wait', () => {
    expect(resolveConfig({}, { CONVEYOR_SSE_HEARTBEAT_MS: '2147483000' }).heartbeatMs).to.equal(2_147_483_000);
    expect(() => resolveConfig({}, { CONVEYOR_SSE_HEARTBEAT_MS: '99999999999' })).to.throw(/CONVEYOR_SSE_HEARTBEAT_MS must be a whole number from 10 to 2147483000/);
  });
});
