import { beforeEach, describe, expect, it, vi } from 'vitest';
import { attachAxios, createLanyard, type AxiosLikeInstance } from '../src/index.js';
import { FakeChannel, FakeServer, LANYARD, removeLocks } from './helpers.js';

const PASSWORD = 'correct horse battery staple';

type Handler = { fulfilled?: ((v: any) => any) | null | undefined; rejected?: ((e: any) => any) | null | undefined } | null;

/** Enough of axios to exercise interceptors: headers as an AxiosHeaders-like object, errors with config/response. */
class FakeAxios implements AxiosLikeInstance {
  sent: Array<{ url: string; authorization: string | undefined }> = [];
  private req: Handler[] = [];
  private res: Handler[] = [];
  constructor(private readonly backend: (auth: string | undefined, n: number) => number) {}

  interceptors = {
    request: {
      use: (fulfilled?: ((v: any) => any) | null, rejected?: ((e: any) => any) | null) => this.req.push({ fulfilled, rejected }) - 1,
      eject: (id: number) => {
        this.req[id] = null;
      },
    },
    response: {
      use: (fulfilled?: ((v: any) => any) | null, rejected?: ((e: any) => any) | null) => this.res.push({ fulfilled, rejected }) - 1,
      eject: (id: number) => {
        this.res[id] = null;
      },
    },
  };

  async request(config: any): Promise<any> {
    if (!config.headers || typeof config.headers.set !== 'function') {
      const store = new Map<string, string>(Object.entries(config.headers ?? {}));
      config.headers = {
        set: (k: string, v: string) => store.set(k.toLowerCase(), v),
        get: (k: string) => store.get(k.toLowerCase()),
      };
    }
    let c = config;
    for (const h of [...this.req].reverse()) if (h?.fulfilled) c = await h.fulfilled(c);
    let p: Promise<any>;
    const authorization = c.headers.get('Authorization') as string | undefined;
    this.sent.push({ url: c.url, authorization });
    const status = this.backend(authorization, this.sent.length);
    if (status < 400) p = Promise.resolve({ status, data: { ok: true }, config: c });
    else p = Promise.reject(Object.assign(new Error(`status ${status}`), { config: c, response: { status, data: {} } }));
    for (const h of this.res) if (h) p = p.then(h.fulfilled ?? undefined, h.rejected ?? undefined);
    return p;
  }
}

let server: FakeServer;
beforeEach(() => {
  server = new FakeServer();
  FakeChannel.reset();
  vi.stubGlobal('BroadcastChannel', FakeChannel);
  removeLocks();
});

async function signedIn() {
  const lanyard = createLanyard({ url: LANYARD, fetch: server.fetch });
  await lanyard.signIn({ email: 'ada@example.com', password: PASSWORD });
  return lanyard;
}

describe('attachAxios', () => {
  it('adds the bearer token to requests', async () => {
    const lanyard = await signedIn();
    const axios = new FakeAxios(() => 200);
    attachAxios(lanyard, axios);
    const res = await axios.request({ url: '/a', headers: { Accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect(axios.sent[0]!.authorization).toBe('Bearer at-1');
  });

  it('works with plain-object headers too', async () => {
    const lanyard = await signedIn();
    const seen: unknown[] = [];
    const axios = {
      interceptors: {
        request: { use: (f: any) => (seen.push(f), 0), eject: () => {} },
        response: { use: () => 0, eject: () => {} },
      },
      request: async () => ({}),
    };
    attachAxios(lanyard, axios);
    const config = await (seen[0] as (c: any) => Promise<any>)({ url: '/b', headers: { 'X-A': '1' } });
    expect(config.headers).toEqual({ 'X-A': '1', Authorization: 'Bearer at-1' });
    const bare = await (seen[0] as (c: any) => Promise<any>)({ url: '/c' });
    expect(bare.headers).toEqual({ Authorization: 'Bearer at-1' });
  });

  it('on 401 refreshes once and retries once', async () => {
    const lanyard = await signedIn();
    const axios = new FakeAxios((auth) => (auth === 'Bearer at-2' ? 200 : 401));
    attachAxios(lanyard, axios);
    const res = await axios.request({ url: '/a' });
    expect(res.status).toBe(200);
    expect(axios.sent.map((s) => s.authorization)).toEqual(['Bearer at-1', 'Bearer at-2']);
    expect(server.count('/v1/auth/refresh')).toBe(1);
  });

  it('does not retry a second 401, nor a 403', async () => {
    const lanyard = await signedIn();
    const axios401 = new FakeAxios(() => 401);
    attachAxios(lanyard, axios401);
    await expect(axios401.request({ url: '/a' })).rejects.toMatchObject({ response: { status: 401 } });
    expect(axios401.sent).toHaveLength(2);
    expect(server.count('/v1/auth/refresh')).toBe(1);

    const axios403 = new FakeAxios(() => 403);
    attachAxios(lanyard, axios403);
    await expect(axios403.request({ url: '/b' })).rejects.toMatchObject({ response: { status: 403 } });
    expect(axios403.sent).toHaveLength(1);
    expect(server.count('/v1/auth/refresh')).toBe(1);
  });

  it('concurrent 401s share one refresh', async () => {
    const lanyard = await signedIn();
    const axios = new FakeAxios((auth) => (auth === 'Bearer at-1' ? 401 : 200));
    attachAxios(lanyard, axios);
    server.latency = 5;
    const results = await Promise.all([1, 2, 3].map((i) => axios.request({ url: `/${i}` })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(server.count('/v1/auth/refresh')).toBe(1);
  });

  it('the returned function ejects both interceptors', async () => {
    const lanyard = await signedIn();
    const axios = new FakeAxios(() => 401);
    const eject = attachAxios(lanyard, axios);
    eject();
    await expect(axios.request({ url: '/a' })).rejects.toMatchObject({ response: { status: 401 } });
    expect(axios.sent).toEqual([{ url: '/a', authorization: undefined }]);
    expect(server.count('/v1/auth/refresh')).toBe(0);
  });
});

describe('attachAxios with the real axios (custom adapter, no network)', () => {
  it('adds Bearer, refreshes and retries once on 401, leaves 403 alone', async () => {
    const { default: axios } = await import('axios');
    const lanyard = await signedIn();
    const seen: Array<string | undefined> = [];
    const instance = axios.create({
      baseURL: 'https://api.example.test',
      adapter: async (config) => {
        const auth = config.headers.get('Authorization') as string | undefined;
        seen.push(auth);
        const status = config.url === '/forbidden' ? 403 : auth === 'Bearer at-2' ? 200 : 401;
        const response = { data: { status }, status, statusText: String(status), headers: {}, config, request: {} };
        if (status >= 400) throw new axios.AxiosError(`status ${status}`, 'ERR_BAD_RESPONSE', config, {}, response);
        return response;
      },
    });
    const eject = attachAxios(lanyard, instance);
    const ok = await instance.get('/chapter');
    expect(ok.status).toBe(200);
    expect(seen).toEqual(['Bearer at-1', 'Bearer at-2']);
    expect(server.count('/v1/auth/refresh')).toBe(1);

    const forbidden = await instance.get('/forbidden').catch((e: { response?: { status: number } }) => e);
    expect(forbidden).toMatchObject({ response: { status: 403 } });
    expect(seen).toHaveLength(3);
    expect(server.count('/v1/auth/refresh')).toBe(1);

    eject();
    seen.length = 0;
    await instance.get('/chapter').catch(() => null);
    expect(seen).toEqual([undefined]);
  });
});
