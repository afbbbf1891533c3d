// Several client instances in one jsdom behave as tabs of one origin: they share the (fake)
// BroadcastChannel, navigator.locks and the server's cookie jar.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLanyard, type Lanyard, type Session } from '../src/index.js';
import { FakeChannel, FakeLocks, FakeServer, LANYARD, installLocks, removeLocks, tick } from './helpers.js';

const PASSWORD = 'correct horse battery staple';
let server: FakeServer;

beforeEach(() => {
  server = new FakeServer();
  FakeChannel.reset();
  vi.stubGlobal('BroadcastChannel', FakeChannel);
  removeLocks();
  localStorage.clear();
  sessionStorage.clear();
});

afterEach(() => {
  vi.useRealTimers();
  removeLocks();
});

function tab(): Lanyard {
  return createLanyard({ url: LANYARD, fetch: server.fetch, refreshLeeway: 30 });
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await tick(5);
  }
}

/** Two tabs that share a session whose access token is (as far as both know) about to expire. */
async function twoTabsWithExpiringToken(): Promise<[Lanyard, Lanyard]> {
  const a = tab();
  const b = tab();
  b.subscribe(() => {}); // start listening, as the provider does
  await a.signIn({ email: 'ada@example.com', password: PASSWORD });
  await until(() => b.session !== null);
  expect(await b.getAccessToken()).toBe('at-1'); // from the broadcast, no request
  expect(server.count('/v1/auth/refresh')).toBe(0);
  // jump past refreshAt without running the proactive timers
  vi.useFakeTimers({ now: Date.now() + 880_000, toFake: ['Date'] });
  return [a, b];
}

describe('tab broadcast', () => {
  it('sign-in in one tab signs the other in; sign-out in one signs the other out', async () => {
    const a = tab();
    const b = tab();
    const seenByB: Array<Session | null> = [];
    b.subscribe((s) => seenByB.push(s));
    await a.signIn({ email: 'ada@example.com', password: PASSWORD });
    await until(() => b.session !== null);
    expect(b.session?.user.email).toBe('ada@example.com');
    expect(await b.getAccessToken()).toBe('at-1');

    await a.signOut();
    await until(() => b.session === null);
    expect(seenByB.map((s) => (s ? 'in' : 'out'))).toEqual(['in', 'out']);
    expect(await b.getAccessToken()).toBeNull();
    expect(server.count('/v1/auth/refresh')).toBe(0);
    // nothing token-like was put in storage shared between tabs
    expect(localStorage.length).toBe(0);
  });

  it('a tab that only created its client still hears the other sign in and out', async () => {
    const a = tab();
    const b = tab(); // no method called: a page that keeps the client for later
    await a.signIn({ email: 'ada@example.com', password: PASSWORD });
    await until(() => b.session !== null);
    expect(await b.getAccessToken()).toBe('at-1'); // from the broadcast, no request
    expect(server.count('/v1/auth/refresh')).toBe(0);
    await a.signOut();
    await until(() => b.session === null);
  });

  it('a refresh in one tab hands the new token to the other', async () => {
    server.cookie = true;
    const a = tab();
    const b = tab();
    b.subscribe(() => {});
    await a.getAccessToken();
    await until(() => b.session !== null);
    expect(await b.getAccessToken()).toBe('at-1');
    expect(server.count('/v1/auth/refresh')).toBe(1);
  });

  it('a restore (refresh 401) in a new tab does not sign out the others', async () => {
    const a = tab();
    a.subscribe(() => {});
    await a.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.cookie = false; // e.g. the new tab raced the cookie; only a tab that had a session broadcasts sign-out
    const c = tab();
    expect(await c.getAccessToken()).toBeNull();
    await FakeChannel.delivered();
    expect(FakeChannel.sent.filter((m) => (m as { type: string }).type === 'signed-out')).toEqual([]);
    expect(a.session).not.toBeNull();
  });
});

describe('cross-tab single refresh, fallback (no navigator.locks)', () => {
  it('two tabs refreshing at once send one request', async () => {
    expect((navigator as { locks?: unknown }).locks).toBeUndefined();
    const [a, b] = await twoTabsWithExpiringToken();
    server.latency = 10;
    const [ta, tb] = await Promise.all([a.getAccessToken(), b.getAccessToken()]);
    expect(server.count('/v1/auth/refresh')).toBe(1);
    expect(ta).toBe('at-2');
    expect(tb).toBe('at-2');
  });

  it('three tabs, one request', async () => {
    const [a, b] = await twoTabsWithExpiringToken();
    vi.useRealTimers();
    const c = tab();
    c.subscribe(() => {});
    server.cookie = true;
    vi.useFakeTimers({ now: Date.now() + 880_000, toFake: ['Date'] });
    server.latency = 10;
    const tokens = await Promise.all([a.getAccessToken(), b.getAccessToken(), c.getAccessToken()]);
    expect(server.count('/v1/auth/refresh')).toBe(1);
    expect(new Set(tokens)).toEqual(new Set(['at-2']));
  });
});

describe('cross-tab single refresh with Web Locks', () => {
  it('two tabs refreshing at once send one request', async () => {
    const locks = new FakeLocks();
    installLocks(locks);
    const [a, b] = await twoTabsWithExpiringToken();
    server.latency = 10;
    const [ta, tb] = await Promise.all([a.getAccessToken(), b.getAccessToken()]);
    expect(server.count('/v1/auth/refresh')).toBe(1);
    expect(ta).toBe('at-2');
    expect(tb).toBe('at-2');
    expect(locks.requests.filter((n) => n === `lanyard:refresh:${LANYARD}`).length).toBe(2);
  });

  it('the waiting tab does not refresh again even when the broadcast arrives after it got the lock', async () => {
    const locks = new FakeLocks();
    installLocks(locks);
    const [a, b] = await twoTabsWithExpiringToken();
    FakeChannel.delay = 150; // the token message lags well behind the lock hand-over
    server.latency = 10;
    const [ta, tb] = await Promise.all([a.getAccessToken(), b.getAccessToken()]);
    expect(server.count('/v1/auth/refresh')).toBe(1);
    expect(ta).toBe('at-2');
    expect(tb).toBe('at-2');
  });

  it('a second refresh later still works (generation moves on)', async () => {
    const locks = new FakeLocks();
    installLocks(locks);
    const [a, b] = await twoTabsWithExpiringToken();
    FakeChannel.delay = 50;
    await Promise.all([a.getAccessToken(), b.getAccessToken()]);
    expect(server.count('/v1/auth/refresh')).toBe(1);
    vi.setSystemTime(Date.now() + 880_000);
    const [ta, tb] = await Promise.all([b.getAccessToken(), a.getAccessToken()]);
    expect(server.count('/v1/auth/refresh')).toBe(2);
    expect(ta).toBe('at-3');
    expect(tb).toBe('at-3');
    vi.setSystemTime(Date.now() + 880_000);
    await Promise.all([a.getAccessToken(), b.getAccessToken()]);
    expect(server.count('/v1/auth/refresh')).toBe(3);
    // each tab holds at most one generation lock (older ones are released), the newest is generation 3
    const gens = (await locks.query()).held.map((l) => l.name).filter((n) => n.includes(':gen:'));
    expect(gens.length).toBeLessThanOrEqual(2);
    expect(gens).toContain(`lanyard:refresh:${LANYARD}:gen:3`);
  });

  it('sign-out in one tab while the other token is expiring: the other ends signed out, no refresh', async () => {
    const locks = new FakeLocks();
    installLocks(locks);
    const [a, b] = await twoTabsWithExpiringToken();
    await a.signOut();
    await until(() => b.session === null);
    expect(await b.getAccessToken()).toBeNull();
    expect(server.count('/v1/auth/refresh')).toBe(0);
  });
});
