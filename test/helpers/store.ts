/** A Store on a fresh key prefix of the real Redis for one describe block: opened before its tests, closed and cleaned after. */
import { after, before } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { Store } from '../../src/store/store.js';
import { cleanup, REDIS_URL, testPrefix } from './redis.js';

export function storeOnFreshPrefix(name: string): { readonly prefix: string; store: () => Store } {
  const prefix = testPrefix(name);
  let s: Store | null = null;
  before(async () => {
    s = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, createLogger('silent'));
  });
  after(async () => {
    await s?.quit();
    await cleanup(prefix);
  });
  return {
    prefix,
    store: () => {
      if (!s) throw new Error(`the store of ${prefix} is not open (use it inside a test)`);
      return s;
    },
  };
}
