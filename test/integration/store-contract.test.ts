// The Store contract (test/contract/store.ts) against the embedded store: node:sqlite in a
// temporary directory of its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore, openDatabase } from '../../src/store/embedded/index.ts';
import { describeStoreContract } from '../contract/store.ts';

describeStoreContract('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-store-contract-'));
  const store = new EmbeddedStore(openDatabase(dir));
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
