// @vitest-environment node
// Static rendering (Docusaurus build, Next.js SSR): no window, document, navigator, storage or
// BroadcastChannel may be touched at import time, by createLanyard, or during render.
import { existsSync } from 'node:fs';
import { renderToString } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const forbidden = ['window', 'document', 'navigator', 'localStorage', 'sessionStorage', 'BroadcastChannel', 'fetch'] as const;
const touched: string[] = [];
const saved = new Map<string, PropertyDescriptor | undefined>();

beforeEach(() => {
  touched.length = 0;
  for (const name of forbidden) {
    saved.set(name, Object.getOwnPropertyDescriptor(globalThis, name));
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get() {
        touched.push(name);
        return undefined;
      },
    });
  }
});

afterEach(() => {
  for (const name of forbidden) {
    const d = saved.get(name);
    if (d) Object.defineProperty(globalThis, name, d);
    else delete (globalThis as Record<string, unknown>)[name];
  }
});

describe('SSR safety', () => {
  it('imports, creates a client and renders the provider and guards without browser APIs', async () => {
    const { createLanyard } = await import('../src/index.js');
    const { LanyardProvider, RequireAuth, RequireProfile, useSession } = await import('../src/react.js');
    const lanyard = createLanyard({ url: 'https://auth.example.test' });
    function Status() {
      const { status, session } = useSession();
      return (
        <span>
          {status}:{session ? 'in' : 'none'}
        </span>
      );
    }
    const navigate = vi.fn();
    const html = renderToString(
      <LanyardProvider client={lanyard} navigate={navigate}>
        <Status />
        <RequireAuth fallback={<em>checking</em>}>
          <b>secret</b>
        </RequireAuth>
        <RequireProfile fallback={<em>profile</em>}>
          <b>chapter</b>
        </RequireProfile>
      </LanyardProvider>,
    );
    expect(html).toContain('loading');
    expect(html).toContain('<em>checking</em>');
    expect(html).toContain('<em>profile</em>');
    expect(html).not.toContain('secret');
    expect(navigate).not.toHaveBeenCalled();
    expect(lanyard.session).toBeNull();
    // createLanyard asks whether it runs in a browser (`typeof window`, which reads the getter and gets
    // undefined here); nothing else may be touched.
    expect(touched.filter((name) => name !== 'window')).toEqual([]);
  });

  // Shown as skipped, not passed, before `npm run build` (npm run ci builds first).
  it.skipIf(!existsSync(new URL('../dist/index.js', import.meta.url)))('the built package imports in plain Node too', async () => {
    const dist = new URL('../dist/index.js', import.meta.url);
    const mod = (await import(/* @vite-ignore */ dist.href)) as typeof import('../src/index.js');
    expect(typeof mod.createLanyard).toBe('function');
    expect(mod.createLanyard({ url: 'https://a.example' }).session).toBeNull();
    expect(touched.filter((name) => name !== 'window')).toEqual([]); // only the `typeof window` check
  });
});
