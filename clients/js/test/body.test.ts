// Body mode: the refresh token lives in memory and sessionStorage, never localStorage.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLanyard } from '../src/index.js';
import { FakeChannel, FakeServer, LANYARD, removeLocks } from './helpers.js';

const PASSWORD = 'correct horse battery staple';
const KEY = `lanyard:refresh:${LANYARD}`;
let server: FakeServer;
let localTouches: string[];

beforeEach(() => {
  server = new FakeServer();
  FakeChannel.reset();
  vi.stubGlobal('BroadcastChannel', FakeChannel);
  removeLocks();
  localStorage.clear();
  sessionStorage.clear();
  localTouches = [];
  // Record every use of localStorage (Storage methods called on it, or property access on window.localStorage).
  for (const method of ['getItem', 'setItem', 'removeItem', 'clear', 'key'] as const) {
    const original = Storage.prototype[method];
    vi.spyOn(Storage.prototype, method).mockImplementation(function (this: Storage, ...args: unknown[]) {
      if (this === window.localStorage) localTouches.push(method);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as never);
  }
});

afterEach(() => {
  vi.useRealTimers();
});

function bodyClient() {
  return createLanyard({ url: LANYARD, tokenDelivery: 'body', fetch: server.fetch });
}

describe('body mode', () => {
  it('keeps the refresh token in sessionStorage, rotates it, and never touches localStorage', async () => {
    const lanyard = bodyClient();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    const login = server.requests[0]!;
    expect(login.headers.get('lanyard-token-delivery')).toBeNull();
    expect(login.credentials).not.toBe('include');
    expect(sessionStorage.getItem(KEY)).toBe('rt-1');

    const refreshed = await lanyard.refresh();
    expect(refreshed?.user.email).toBe('ada@example.com');
    const refresh = server.requests.at(-1)!;
    expect(refresh.path).toBe('/v1/auth/refresh');
    expect(JSON.parse(refresh.body)).toEqual({ refresh_token: 'rt-1' });
    expect(sessionStorage.getItem(KEY)).toBe('rt-2');
    expect(await lanyard.getAccessToken()).toBe('at-2');

    await lanyard.signOut();
    const logout = server.requests.at(-1)!;
    expect(logout.path).toBe('/v1/auth/logout');
    expect(JSON.parse(logout.body)).toEqual({ refresh_token: 'rt-2' });
    expect(sessionStorage.getItem(KEY)).toBeNull();

    expect(localTouches).toEqual([]);
    expect(localStorage.length).toBe(0);
    // the access token is nowhere in storage either
    expect(JSON.stringify({ ...sessionStorage })).not.toContain('at-');
    // the spy does see localStorage use (so the checks above mean something)
    localStorage.getItem('probe');
    expect(localTouches).toEqual(['getItem']);
  });

  it('a new client in a reloaded page restores from sessionStorage', async () => {
    const first = bodyClient();
    await first.signIn({ email: 'ada@example.com', password: PASSWORD });
    FakeChannel.reset(); // "reload": the old page is gone
    const second = bodyClient();
    expect(await second.getAccessToken()).toBe('at-2');
    expect(JSON.parse(server.requests.at(-1)!.body)).toEqual({ refresh_token: 'rt-1' });
    expect(second.session?.user.email).toBe('ada@example.com');
    expect(localTouches).toEqual([]);
  });

  it('is signed out without any request when there is no stored refresh token', async () => {
    const lanyard = bodyClient();
    expect(await lanyard.getAccessToken()).toBeNull();
    expect(server.requests).toHaveLength(0);
    await lanyard.signOut(); // nothing to end on the server
    expect(server.requests).toHaveLength(0);
    expect(localTouches).toEqual([]);
  });

  it('a rejected refresh token (401) clears sessionStorage', async () => {
    sessionStorage.setItem(KEY, 'rt-stale');
    const lanyard = bodyClient();
    expect(await lanyard.getAccessToken()).toBeNull();
    expect(sessionStorage.getItem(KEY)).toBeNull();
  });

  it('shares the rotated refresh token with other tabs, so none presents a spent one', async () => {
    const a = bodyClient();
    const b = bodyClient();
    b.subscribe(() => {});
    await a.signIn({ email: 'ada@example.com', password: PASSWORD });
    await FakeChannel.delivered();
    await b.refresh(); // b presents rt-1 (received from a) and gets rt-2
    expect(JSON.parse(server.requests.at(-1)!.body)).toEqual({ refresh_token: 'rt-1' });
    await FakeChannel.delivered();
    await a.refresh(); // a must present rt-2, not its spent rt-1
    expect(JSON.parse(server.requests.at(-1)!.body)).toEqual({ refresh_token: 'rt-2' });
    expect(a.session).not.toBeNull();
    expect(localTouches).toEqual([]);
  });
});
