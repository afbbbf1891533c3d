// @vitest-environment node
// Optional: drives a real Lanyard. Skipped unless LANYARD_LIVE_URL is set, e.g.
//   LANYARD_LIVE_URL=http://127.0.0.1:8080 LANYARD_LIVE_ORIGIN=http://localhost:3000 npm test
// (the origin must be in the server's LANYARD_CORS_ORIGINS). A tiny cookie jar plus an Origin header
// stand in for the browser; the real browser run is scripts/browser.
import { describe, expect, it } from 'vitest';
import { createLanyard, LanyardError } from '../src/index.js';

const url = process.env.LANYARD_LIVE_URL;
const origin = process.env.LANYARD_LIVE_ORIGIN ?? 'http://localhost:3000';

function browserLikeFetch(jar: Map<string, string>, log: string[]): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const headers = new Headers(request.headers);
    headers.set('Origin', origin);
    if (request.credentials === 'include' && jar.size) {
      headers.set('Cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    log.push(`${request.method} ${new URL(request.url).pathname}`);
    const res = await fetch(new Request(request, { headers }));
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const [name, value] = (pair ?? '').split('=') as [string, string];
      const maxAge = attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('max-age='));
      if (maxAge === 'Max-Age=0' || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
}

describe.skipIf(!url)('live Lanyard', () => {
  it('cookie mode: sign up, restore in a "reloaded page", onboarding, refresh, sign out', async () => {
    const jar = new Map<string, string>();
    const log: string[] = [];
    const f = browserLikeFetch(jar, log);
    const email = `js-${Date.now()}@example.com`;
    const password = 'quartz otter violin 1984 bramble';
    const first = createLanyard({ url: url!, fetch: f });
    const session = await first.signUp({ email, password, name: 'JS' });
    expect(session.user.email).toBe(email);
    expect(session.profileComplete).toBe(false);
    expect(jar.has('__Host-lanyard-refresh')).toBe(true);

    const reloaded = createLanyard({ url: url!, fetch: f });
    const token = await reloaded.getAccessToken();
    expect(token).toMatch(/^ey/);
    expect(reloaded.session?.user.email).toBe(email);

    const updated = await reloaded.updateProfile({ python_proficiency: 'intermediate', developer_role: 'robotics_engineer' });
    expect(updated.profileComplete).toBe(true);
    const me = await reloaded.fetch(`${url}/v1/me`);
    expect(me.status).toBe(200);
    expect(((await me.json()) as { profile_complete: boolean }).profile_complete).toBe(true);

    const refreshed = await reloaded.refresh();
    expect(refreshed?.profile?.python_proficiency).toBe('intermediate');

    await reloaded.signOut();
    expect(jar.has('__Host-lanyard-refresh')).toBe(false);
    const third = createLanyard({ url: url!, fetch: f });
    expect(await third.getAccessToken()).toBeNull();

    const bad = await first.signIn({ email, password: 'wrong password, surely' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(LanyardError);
    expect((bad as LanyardError).code).toBe('invalid_credentials');
  });

  it('body mode: refresh token in the body, rotation, logout', async () => {
    const log: string[] = [];
    const f = browserLikeFetch(new Map(), log);
    const lanyard = createLanyard({ url: url!, fetch: f, tokenDelivery: 'body' });
    const email = `jsb-${Date.now()}@example.com`;
    await lanyard.signUp({ email, password: 'mossy teapot gravel 2207 lantern' });
    expect(await lanyard.refresh()).not.toBeNull();
    expect(await lanyard.getAccessToken()).toMatch(/^ey/);
    await lanyard.signOut();
    expect(await lanyard.refresh()).toBeNull();
  });

  it('cookie mode from an origin that is not allowed: csrf_rejected', async () => {
    const f: typeof fetch = (input, init) => {
      const request = new Request(input, init);
      const headers = new Headers(request.headers);
      headers.set('Origin', 'http://127.0.0.1:1');
      return fetch(new Request(request, { headers }));
    };
    const lanyard = createLanyard({ url: url!, fetch: f });
    const error = await lanyard.refresh().catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 403, code: 'csrf_rejected' });
  });
});
