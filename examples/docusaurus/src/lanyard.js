// One Lanyard client per page, created the first time it is needed.
//
// createLanyard touches no browser API when it is called (timers, storage,
// BroadcastChannel and Web Locks are used lazily), so static rendering may
// create one too; in the browser the same client serves the whole page.
import { createLanyard } from '@lanyard/client';

let browserClient = null;

export function getLanyard(url) {
  const make = () => createLanyard({ url, tokenDelivery: 'cookie' });
  if (typeof window === 'undefined') {
    // Static rendering: one throwaway client per render, never shared between builds' pages.
    return make();
  }
  if (!browserClient) browserClient = make();
  return browserClient;
}
