import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLanyard, LanyardError, type Session } from '../src/index.js';
import { API, FakeChannel, FakeServer, LANYARD, problem, removeLocks } from './helpers.js';

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
});

function client(extra: { refreshLeeway?: number } = {}) {
  return createLanyard({ url: `${LANYARD}/`, fetch: server.fetch, ...extra });
}

describe('createLanyard', () => {
  it('validates its options', () => {
    expect(() => createLanyard({ url: '' })).toThrow(TypeError);
    expect(() => createLanyard({ url: LANYARD, tokenDelivery: 'header' as never })).toThrow(TypeError);
    expect(() => createLanyard({ url: LANYARD, refreshLeeway: -1 })).toThrow(TypeError);
  });

  it('does not touch the network or storage until used', () => {
    const getItem = vi.spyOn(Storage.prototype, 'getItem');
    const lanyard = client();
    expect(lanyard.session).toBeNull();
    expect(server.requests).toHaveLength(0);
    expect(getItem).not.toHaveBeenCalled();
  });
});

describe('sign-in, restore and refresh (cookie mode)', () => {
  it('signs in with the cookie headers and keeps the session', async () => {
    const lanyard = client();
    const session = await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    expect(session.user.email).toBe('ada@example.com');
    expect(session.profileComplete).toBe(false);
    expect(session.profile).toBeNull();
    expect(lanyard.session).toBe(session);
    const req = server.requests[0]!;
    expect(req.path).toBe('/v1/auth/login');
    expect(req.credentials).toBe('include');
    expect(req.headers.get('lanyard-token-delivery')).toBe('cookie');
    expect(req.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(req.body)).toEqual({ email: 'ada@example.com', password: PASSWORD });
    expect(await lanyard.getAccessToken()).toBe('at-1');
    expect(server.count('/v1/auth/refresh')).toBe(0);
  });

  it('signUp sends name only when given', async () => {
    const lanyard = client();
    await lanyard.signUp({ email: 'ada@example.com', password: PASSWORD });
    expect(JSON.parse(server.requests[0]!.body)).toEqual({ email: 'ada@example.com', password: PASSWORD });
    await lanyard.signUp({ email: 'ada@example.com', password: PASSWORD, name: 'Ada' });
    expect(JSON.parse(server.requests[1]!.body)).toEqual({ email: 'ada@example.com', password: PASSWORD, name: 'Ada' });
  });

  it('throws LanyardError with the problem on a failed sign-in', async () => {
    const lanyard = client();
    const error = await lanyard.signIn({ email: 'ada@example.com', password: 'wrong' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LanyardError);
    expect(error).toMatchObject({ status: 401, code: 'invalid_credentials', problem: { code: 'invalid_credentials' } });
    expect(lanyard.session).toBeNull();
  });

  it('surfaces 429 and 503 with Retry-After as LanyardError without retrying', async () => {
    server.routes.push((r) => (r.path === '/v1/auth/login' ? problem(429, 'rate_limited', { 'Retry-After': '7' }) : undefined));
    server.routes.push((r) => (r.path === '/v1/auth/signup' ? new Response('busy', { status: 503, headers: { 'Retry-After': '3' } }) : undefined));
    const lanyard = client();
    const e1 = (await lanyard.signIn({ email: 'a@example.com', password: PASSWORD }).catch((e: unknown) => e)) as LanyardError;
    expect(e1).toMatchObject({ status: 429, code: 'rate_limited', retryAfter: 7 });
    const e2 = (await lanyard.signUp({ email: 'a@example.com', password: PASSWORD }).catch((e: unknown) => e)) as LanyardError;
    expect(e2).toMatchObject({ status: 503, code: 'unavailable', retryAfter: 3, problem: null });
    expect(server.requests).toHaveLength(2);
  });

  it('exchanges a Better-Auth session through the same session start as sign-in', async () => {
    server.routes.push((r) =>
      r.path === '/v1/auth/exchange/better-auth' && JSON.parse(r.body).token === 'tok.sig' ? server.issue(200, true) : undefined,
    );
    const lanyard = client();
    const session = await lanyard.exchangeBetterAuthSession('tok.sig');
    expect(session.user.email).toBe('ada@example.com');
    expect(lanyard.session).not.toBeNull();
    expect(await lanyard.getAccessToken()).toBeTruthy();
    const req = server.requests.find((r) => r.path === '/v1/auth/exchange/better-auth')!;
    expect(req.headers.get('Lanyard-Token-Delivery')).toBe('cookie');
    expect(req.credentials).toBe('include');
  });

  it('a 202 sign-up (verification required) opens no session and says so', async () => {
    server.routes.push((r) =>
      r.path === '/v1/auth/signup'
        ? new Response(JSON.stringify({ status: 'accepted', message: 'if an account can receive it, a mail is on its way' }), {
            status: 202,
            headers: { 'Content-Type': 'application/json' },
          })
        : undefined,
    );
    const lanyard = client();
    const error = (await lanyard.signUp({ email: 'a@example.com', password: PASSWORD }).catch((e: unknown) => e)) as LanyardError;
    expect(error).toBeInstanceOf(LanyardError);
    expect(error).toMatchObject({ status: 202, code: 'verification_required' });
    expect(lanyard.session).toBeNull();
    expect(await lanyard.getAccessToken()).toBeNull();
  });

  it('puts validation field errors into the message', async () => {
    server.routes.push((r) =>
      r.path === '/v1/auth/signup'
        ? new Response(
            JSON.stringify({
              type: 'about:blank',
              title: 'Bad Request',
              status: 400,
              detail: 'the request has invalid fields',
              code: 'validation_failed',
              errors: [{ field: 'password', message: 'must not contain the service name' }],
            }),
            { status: 400, headers: { 'Content-Type': 'application/problem+json' } },
          )
        : undefined,
    );
    const error = (await client().signUp({ email: 'a@example.com', password: 'lanyard' }).catch((e: unknown) => e)) as LanyardError;
    expect(error.code).toBe('validation_failed');
    expect(error.problem?.errors?.[0]?.field).toBe('password');
    expect(error.message).toBe('the request has invalid fields: password must not contain the service name');
  });

  it('wraps network errors as LanyardError network_error', async () => {
    const lanyard = createLanyard({ url: LANYARD, fetch: () => Promise.reject(new TypeError('Failed to fetch')) });
    await expect(lanyard.signIn({ email: 'a@example.com', password: PASSWORD })).rejects.toMatchObject({
      status: 0,
      code: 'network_error',
    });
  });

  it('restores the session from the cookie on the first getAccessToken() (reload)', async () => {
    server.cookie = true;
    const lanyard = client();
    const seen: Array<Session | null> = [];
    lanyard.subscribe((s) => seen.push(s));
    expect(await lanyard.getAccessToken()).toBe('at-1');
    expect(lanyard.session?.user.id).toBe(server.user.id);
    expect(seen).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.path).toBe('/v1/auth/refresh');
    expect(req.body).toBe('{}');
    expect(req.headers.get('content-type')).toBe('application/json');
    expect(req.headers.get('lanyard-token-delivery')).toBe('cookie');
    expect(req.credentials).toBe('include');
  });

  it('is signed out (null) when the refresh answers 401, and does not ask again', async () => {
    const lanyard = client();
    expect(await lanyard.getAccessToken()).toBeNull();
    expect(await lanyard.getAccessToken()).toBeNull();
    expect(lanyard.session).toBeNull();
    expect(server.count('/v1/auth/refresh')).toBe(1);
    expect(await lanyard.refresh()).toBeNull(); // an explicit refresh does ask
    expect(server.count('/v1/auth/refresh')).toBe(2);
  });

  it('sends exactly one refresh for N concurrent getAccessToken() calls', async () => {
    server.cookie = true;
    server.latency = 20;
    const lanyard = client();
    const tokens = await Promise.all(Array.from({ length: 8 }, () => lanyard.getAccessToken()));
    expect(new Set(tokens)).toEqual(new Set(['at-1']));
    expect(server.count('/v1/auth/refresh')).toBe(1);
    // and refresh() joins a refresh already in flight
    server.expireAccessTokens();
    const [a, b, c] = await Promise.all([lanyard.refresh(), lanyard.refresh(), lanyard.refresh()]);
    expect(a).toBe(b);
    expect(b).toBe(c);
    expect(server.count('/v1/auth/refresh')).toBe(2);
  });

  it('single-flight also holds without BroadcastChannel or Web Locks', async () => {
    vi.stubGlobal('BroadcastChannel', undefined);
    server.cookie = true;
    server.latency = 5;
    const lanyard = client();
    await Promise.all([lanyard.getAccessToken(), lanyard.getAccessToken(), lanyard.getAccessToken()]);
    expect(server.count('/v1/auth/refresh')).toBe(1);
  });

  it('refreshes proactively refreshLeeway seconds before expiry', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    server.accessTtl = 120;
    const lanyard = client({ refreshLeeway: 30 });
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    await vi.advanceTimersByTimeAsync(89_000);
    expect(server.count('/v1/auth/refresh')).toBe(0);
    expect(await lanyard.getAccessToken()).toBe('at-1');
    await vi.advanceTimersByTimeAsync(2_000); // t = 91 s: 29 s before expiry
    expect(server.count('/v1/auth/refresh')).toBe(1);
    expect(await lanyard.getAccessToken()).toBe('at-2');
    expect(server.count('/v1/auth/refresh')).toBe(1);
    // and the next one 90 s after that
    await vi.advanceTimersByTimeAsync(91_000);
    expect(server.count('/v1/auth/refresh')).toBe(2);
  });

  it('a failing proactive refresh is retried at a bounded pace, not in a loop', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    server.accessTtl = 120;
    const lanyard = client({ refreshLeeway: 30 });
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.routes.push((r) => (r.path === '/v1/auth/refresh' ? problem(503, 'unavailable', { 'Retry-After': '1' }) : undefined));
    await vi.advanceTimersByTimeAsync(91_000); // first attempt at 90 s
    expect(server.count('/v1/auth/refresh')).toBe(1);
    expect(lanyard.session).not.toBeNull(); // a 503 does not sign out
    await vi.advanceTimersByTimeAsync(15_000); // one retry 15 s later
    expect(server.count('/v1/auth/refresh')).toBe(2);
    await vi.advanceTimersByTimeAsync(120_000); // no retry would end before expiry: stop
    expect(server.count('/v1/auth/refresh')).toBe(2);
    server.routes.length = 0;
    const pending = lanyard.getAccessToken(); // on demand, it works again
    await vi.advanceTimersByTimeAsync(100);
    expect(await pending).toBe('at-2');
  });

  it('getAccessToken() refreshes first when the token is about to expire (timer throttled)', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    server.accessTtl = 300;
    const lanyard = client({ refreshLeeway: 60 });
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    vi.setSystemTime(new Date('2026-01-01T00:04:10Z')); // 50 s left, no timer has run
    const pending = lanyard.getAccessToken();
    await vi.advanceTimersByTimeAsync(100);
    expect(await pending).toBe('at-2');
    expect(server.count('/v1/auth/refresh')).toBe(1);
  });

  it('keeps a still-valid token when a refresh fails for a transient reason', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    server.accessTtl = 300;
    vi.stubGlobal('BroadcastChannel', undefined); // a lone tab: no cross-tab coordination
    const lanyard = createLanyard({ url: LANYARD, fetch: server.fetch, refreshLeeway: 60 });
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.routes.push((r) => (r.path === '/v1/auth/refresh' ? problem(503, 'unavailable', { 'Retry-After': '5' }) : undefined));
    vi.setSystemTime(new Date('2026-01-01T00:04:10Z'));
    expect(await lanyard.getAccessToken()).toBe('at-1');
    expect(lanyard.session).not.toBeNull();
    vi.setSystemTime(new Date('2026-01-01T00:06:00Z')); // expired
    await expect(lanyard.getAccessToken()).rejects.toMatchObject({ code: 'unavailable', status: 503, retryAfter: 5 });
  });
});

describe('signOut', () => {
  it('posts logout with the cookie headers, clears state and notifies', async () => {
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    const seen: Array<Session | null> = [];
    lanyard.subscribe((s) => seen.push(s));
    await lanyard.signOut();
    const req = server.requests.at(-1)!;
    expect(req.path).toBe('/v1/auth/logout');
    expect(req.body).toBe('{}');
    expect(req.headers.get('lanyard-token-delivery')).toBe('cookie');
    expect(req.credentials).toBe('include');
    expect(lanyard.session).toBeNull();
    expect(seen).toEqual([null]);
    expect(await lanyard.getAccessToken()).toBeNull();
    expect(server.count('/v1/auth/refresh')).toBe(0);
  });

  it('clears local state even if the server call fails', async () => {
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.routes.push((r) => (r.path === '/v1/auth/logout' ? problem(500, 'internal') : undefined));
    await expect(lanyard.signOut()).rejects.toMatchObject({ status: 500, code: 'internal' });
    expect(lanyard.session).toBeNull();
    expect(await lanyard.getAccessToken()).toBeNull();

    const offline = createLanyard({ url: LANYARD, fetch: server.fetch });
    await offline.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.routes.unshift((r) => {
      if (r.path === '/v1/auth/logout') throw new TypeError('Failed to fetch');
      return undefined;
    });
    await expect(offline.signOut()).rejects.toMatchObject({ code: 'network_error' });
    expect(offline.session).toBeNull();
  });
});

describe('updateProfile', () => {
  it('PUTs the profile with the bearer token and adopts the new access token', async () => {
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    const seen: Array<Session | null> = [];
    lanyard.subscribe((s) => seen.push(s));
    const session = await lanyard.updateProfile({ python_proficiency: 'advanced', developer_role: 'robotics_engineer' });
    const req = server.requests.at(-1)!;
    expect(req.method).toBe('PUT');
    expect(req.path).toBe('/v1/me/profile');
    expect(req.headers.get('authorization')).toBe('Bearer at-1');
    expect(JSON.parse(req.body)).toEqual({ python_proficiency: 'advanced', developer_role: 'robotics_engineer' });
    expect(session.profileComplete).toBe(true);
    expect(session.user.profile_complete).toBe(true);
    expect(session.profile).toMatchObject({ python_proficiency: 'advanced', developer_role: 'robotics_engineer' });
    expect(seen).toEqual([session]);
    expect(await lanyard.getAccessToken()).toBe('at-2');
  });

  it('throws LanyardError validation_failed and unauthorized', async () => {
    const lanyard = client();
    await expect(lanyard.updateProfile({ python_proficiency: 'none', developer_role: 'other' })).rejects.toMatchObject({
      code: 'unauthorized',
    });
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.routes.push((r) => (r.path === '/v1/me/profile' ? problem(400, 'validation_failed') : undefined));
    await expect(
      lanyard.updateProfile({ python_proficiency: 'guru' as never, developer_role: 'other' }),
    ).rejects.toMatchObject({ status: 400, code: 'validation_failed' });
  });
});

describe('lanyard.fetch', () => {
  function backend(opts: { status?: (token: string, n: number) => number } = {}) {
    let n = 0;
    server.routes.push(async (r) => {
      if (!r.url.startsWith(API)) return undefined;
      n++;
      const token = (r.headers.get('authorization') ?? '').replace(/^Bearer /, '');
      const status = opts.status ? opts.status(token, n) : server.valid.has(token) ? 200 : 401;
      if (status === 200) return Response.json({ ok: true, token, body: r.body });
      if (status === 403) return problem(403, 'profile_incomplete');
      return problem(status, status === 401 ? 'unauthorized' : 'internal', status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
    });
    return () => server.requests.filter((r) => r.url.startsWith(API));
  }

  it('adds the bearer token and resolves with an unread Response', async () => {
    const calls = backend();
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    const res = await lanyard.fetch(`${API}/chapter`, { headers: { 'X-Request-Id': 'r1' } });
    expect(res.status).toBe(200);
    expect(res.bodyUsed).toBe(false);
    expect(res.code).toBeNull();
    expect(res.problem).toBeNull();
    expect(await res.json()).toMatchObject({ ok: true, token: 'at-1' });
    expect(calls()[0]!.headers.get('x-request-id')).toBe('r1');
  });

  it('on 401 refreshes once and retries once, body included', async () => {
    const calls = backend();
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.expireAccessTokens();
    const res = await lanyard.fetch(`${API}/notes`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ note: 'hi' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ token: 'at-2', body: '{"note":"hi"}' });
    expect(calls()).toHaveLength(2);
    expect(calls().map((c) => c.headers.get('authorization'))).toEqual(['Bearer at-1', 'Bearer at-2']);
    expect(server.count('/v1/auth/refresh')).toBe(1);
  });

  it('retries a ReadableStream body too (the request is cloned before the first send)', async () => {
    const calls = backend();
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.expireAccessTokens();
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('streamed'));
        c.close();
      },
    });
    const res = await lanyard.fetch(`${API}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(200);
    expect(calls().map((c) => c.body)).toEqual(['streamed', 'streamed']);
  });

  it('retries only once: a second 401 is handed back with its problem', async () => {
    const calls = backend({ status: () => 401 });
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    const res = await lanyard.fetch(`${API}/x`);
    expect(res.status).toBe(401);
    expect(res.code).toBe('unauthorized');
    expect(calls()).toHaveLength(2);
    expect(server.count('/v1/auth/refresh')).toBe(1);
  });

  it('hands back the 401 when the refresh says signed out', async () => {
    const calls = backend({ status: () => 401 });
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.cookie = false;
    const res = await lanyard.fetch(`${API}/x`);
    expect(res.status).toBe(401);
    expect(calls()).toHaveLength(1);
    expect(lanyard.session).toBeNull();
  });

  it('never retries a 403, exposes code profile_incomplete and leaves the body readable', async () => {
    const calls = backend({ status: () => 403 });
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    const res = await lanyard.fetch(`${API}/personalised`);
    expect(res.status).toBe(403);
    expect(res.code).toBe('profile_incomplete');
    expect(res.problem).toMatchObject({ status: 403, code: 'profile_incomplete' });
    expect(res.bodyUsed).toBe(false);
    expect(await res.json()).toMatchObject({ code: 'profile_incomplete' });
    expect(calls()).toHaveLength(1);
    expect(server.count('/v1/auth/refresh')).toBe(0);
  });

  it('concurrent 401s share one refresh', async () => {
    const calls = backend();
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    server.expireAccessTokens();
    server.latency = 5;
    const results = await Promise.all([1, 2, 3, 4].map((i) => lanyard.fetch(`${API}/c${i}`)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(server.count('/v1/auth/refresh')).toBe(1);
    expect(calls()).toHaveLength(8);
  });

  it('rejects with LanyardError unauthorized when signed out, without calling the backend', async () => {
    const calls = backend();
    const lanyard = client();
    const error = await lanyard.fetch(`${API}/x`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LanyardError);
    expect(error).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(calls()).toHaveLength(0);
  });

  it('rejects on network errors', async () => {
    server.routes.push((r) => {
      if (r.url.startsWith(API)) throw new TypeError('Failed to fetch');
      return undefined;
    });
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    await expect(lanyard.fetch(`${API}/x`)).rejects.toThrow(TypeError);
  });

  it('does not loop on 429/503 from a backend', async () => {
    const calls = backend({ status: () => 503 });
    const lanyard = client();
    await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
    // Fake timers from here: a retry loop's timers, however long, fire within the advance below.
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'Date'] });
    const res = await lanyard.fetch(`${API}/x`);
    expect(res.status).toBe(503);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(calls()).toHaveLength(1);
  });
});
