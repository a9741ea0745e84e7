import { expect } from 'chai';
import { resolve } from 'node:path';
import { resolveConfig } from '../../src/config.ts';

describe('config', () => {
  it('defaults to local mode on 127.0.0.1:8080 with a 1 MiB body limit', () => {
    const config = resolveConfig({}, {});
    expect(config).to.include({ mode: 'local', host: '127.0.0.1', port: 8080, maxBodyBytes: 1048576 });
    expect(config.dataDir).to.equal(resolve('.data'));
    expect(config.concurrency).to.be.at.least(1);
  });
  it('reads the environment, and flags win over it', () => {
    const env = { CONVEYOR_PORT: '9000', CONVEYOR_HOST: '0.0.0.0', CONVEYOR_DATA_DIR: '/tmp/x' };
    expect(resolveConfig({}, env)).to.include({ port: 9000, host: '0.0.0.0', dataDir: '/tmp/x' });
    expect(resolveConfig({ port: '9001', host: '::1', dataDir: '/tmp/y' }, env)).to.include({ port: 9001, host: '::1', dataDir: '/tmp/y' });
  });
  it('names the source of a bad value', () => {
    expect(() => resolveConfig({}, { CONVEYOR_PORT: 'eighty' })).to.throw(/CONVEYOR_PORT must be a whole number/);
    expect(() => resolveConfig({ port: '70000' }, {})).to.throw(/--port must be a whole number from 0 to 65535/);
    expect(() => resolveConfig({ mode: 'cloud' }, {})).to.throw(/--mode must be "local" or "kubernetes"/);
  });
  it('knows its installation (the Deployment the chart names) only when told', () => {
    expect(resolveConfig({}, {}).installation).to.equal(undefined);
    expect(resolveConfig({}, { CONVEYOR_INSTALLATION: '' }).installation).to.equal(undefined);
    expect(resolveConfig({}, { CONVEYOR_INSTALLATION: 'ci-conveyor' }).installation).to.equal('ci-conveyor');
  });
});
