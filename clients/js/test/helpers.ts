// Test doubles: a fake Lanyard server (as a fetch function), a BroadcastChannel with controllable
// delivery delay, and a small Web Locks implementation. Several client instances in one jsdom act as tabs.

export const LANYARD = 'https://auth.example.test';
export const API = 'https://api.example.test';

export interface Recorded {
  method: string;
  url: string;
  path: string;
  headers: Headers;
  body: string;
  credentials: RequestCredentials;
}

export interface FakeUser {
  id: string;
  email: string;
  name: string | null;
  created_at: string;
  profile_complete: boolean;
  profile: { python_proficiency: string; developer_role: string; completed_at: string | null } | null;
}

function problem(status: number, code: string, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ type: 'about:blank', title: 'Error', status, detail: `problem ${code}`, code }), {
    status,
    headers: { 'Content-Type': 'application/problem+json', ...extraHeaders },
  });
}

export { problem };

export type Handler = (req: Recorded) => Response | undefined | Promise<Response | undefined>;

/** A fake Lanyard (plus optional backend routes) behind a fetch function. */
export class FakeServer {
  requests: Recorded[] = [];
  accessTtl = 900;
  private counter = 0;
  /** Valid access tokens (a 401 on /v1/me etc. for others). */
  valid = new Set<string>();
  /** Body mode: the current refresh token; cookie mode: whether the "cookie" is set. */
  refreshToken: string | null = null;
  cookie = false;
  user: FakeUser = {
    id: '0b9d6a2e-3c1f-4f7a-9e2d-5c8b1a7f4e60',
    email: 'ada@example.com',
    name: 'Ada',
    created_at: '2025-01-15T09:30:00Z',
    profile_complete: false,
    profile: null,
  };
  /** Extra routes, tried first. */
  routes: Handler[] = [];
  /** Artificial latency of every answer, ms (real timers). */
  latency = 0;

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const rec: Recorded = {
      method: request.method,
      url: request.url,
      path: url.origin === LANYARD ? url.pathname : url.href,
      headers: request.headers,
      body: request.body ? await request.text() : '',
      credentials: request.credentials,
    };
    this.requests.push(rec);
    if (this.latency) await new Promise((r) => setTimeout(r, this.latency));
    for (const route of this.routes) {
      const res = await route(rec);
      if (res) return res;
    }
    return this.handle(rec);
  };

  count(path: string): number {
    return this.requests.filter((r) => r.path === path).length;
  }

  issue(status = 200, cookieMode = true): Response {
    this.counter++;
    const token = `at-${this.counter}`;
    this.valid.add(token);
    const body: Record<string, unknown> = {
      access_token: token,
      token_type: 'Bearer',
      expires_in: this.accessTtl,
      refresh_expires_in: 604800,
      user: structuredClone(this.user),
    };
    if (cookieMode) this.cookie = true;
    else {
      this.refreshToken = `rt-${this.counter}`;
      body.refresh_token = this.refreshToken;
    }
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  }

  /** Invalidates every access token issued so far (as if they expired server-side). */
  expireAccessTokens(): void {
    this.valid.clear();
  }

  private handle(rec: Recorded): Response {
    const cookieMode = rec.headers.get('lanyard-token-delivery') === 'cookie';
    const json = (): Record<string, unknown> => (rec.body ? (JSON.parse(rec.body) as Record<string, unknown>) : {});
    switch (rec.path) {
      case '/v1/auth/signup':
        return this.issue(201, cookieMode);
      case '/v1/auth/login': {
        const b = json();
        if (b.password !== 'correct horse battery staple') return problem(401, 'invalid_credentials');
        return this.issue(200, cookieMode);
      }
      case '/v1/auth/refresh': {
        const b = json();
        if (typeof b.refresh_token === 'string') {
          if (b.refresh_token !== this.refreshToken) return problem(401, 'invalid_refresh_token');
          return this.issue(200, false);
        }
        if (!cookieMode) return problem(403, 'csrf_rejected');
        if (!this.cookie) return problem(401, 'invalid_refresh_token');
        return this.issue(200, true);
      }
      case '/v1/auth/logout':
        this.cookie = false;
        this.refreshToken = null;
        return new Response(null, { status: 204 });
      case '/v1/me/profile': {
        const auth = rec.headers.get('authorization') ?? '';
        if (!this.valid.has(auth.replace(/^Bearer /, ''))) return problem(401, 'unauthorized');
        const b = json();
        this.user.profile = {
          python_proficiency: String(b.python_proficiency),
          developer_role: String(b.developer_role),
          completed_at: '2025-01-15T09:32:10Z',
        };
        this.user.profile_complete = true;
        this.counter++;
        const token = `at-${this.counter}`;
        this.valid.add(token);
        return new Response(
          JSON.stringify({ profile: this.user.profile, access_token: token, token_type: 'Bearer', expires_in: this.accessTtl }),
          { status: 200, headers: { 'Content-Type': 'application/json' } },
        );
      }
      default:
        return problem(404, 'not_found');
    }
  }
}

/** BroadcastChannel double: delivers to the other instances of the same name after `FakeChannel.delay` ms. */
export class FakeChannel {
  static registry = new Map<string, Set<FakeChannel>>();
  static delay = 0;
  static sent: unknown[] = [];
  /** Messages posted and not yet handed to their receiver. */
  private static pending = 0;
  private static idle = new Set<() => void>();
  onmessage: ((event: MessageEvent) => void) | null = null;
  private closed = false;

  constructor(readonly name: string) {
    let set = FakeChannel.registry.get(name);
    if (!set) FakeChannel.registry.set(name, (set = new Set()));
    set.add(this);
  }

  postMessage(data: unknown): void {
    const copy = structuredClone(data);
    FakeChannel.sent.push(copy);
    for (const other of FakeChannel.registry.get(this.name) ?? []) {
      if (other === this) continue;
      FakeChannel.pending++;
      setTimeout(() => {
        try {
          if (!other.closed) other.onmessage?.({ data: structuredClone(copy) } as MessageEvent);
        } finally {
          // A receiver that posts in turn has raised pending again before this.
          if (--FakeChannel.pending === 0) {
            for (const resolve of FakeChannel.idle) resolve();
            FakeChannel.idle.clear();
          }
        }
      }, FakeChannel.delay);
    }
  }

  /** Resolves once every message posted so far (and any posted while handling them) has been handled. */
  static delivered(): Promise<void> {
    if (FakeChannel.pending === 0) return Promise.resolve();
    return new Promise((resolve) => FakeChannel.idle.add(resolve));
  }

  close(): void {
    this.closed = true;
    FakeChannel.registry.get(this.name)?.delete(this);
  }

  static reset(): void {
    FakeChannel.registry.clear();
    FakeChannel.delay = 0;
    FakeChannel.sent = [];
    FakeChannel.pending = 0;
    FakeChannel.idle.clear();
  }
}

interface LockRequest {
  name: string;
  mode: 'exclusive' | 'shared';
  grant: () => void;
}

/** A minimal Web Locks API (request with exclusive/shared modes, query), granting asynchronously. */
export class FakeLocks {
  private held: Array<{ name: string; mode: 'exclusive' | 'shared' }> = [];
  private queue: LockRequest[] = [];
  requests: string[] = [];

  request(name: string, options: { mode?: 'exclusive' | 'shared' }, callback: (lock: unknown) => unknown): Promise<unknown> {
    this.requests.push(name);
    const mode = options.mode ?? 'exclusive';
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        const lock = { name, mode };
        this.held.push(lock);
        Promise.resolve()
          .then(() => callback(lock))
          .then(
            (value) => {
              this.release(lock);
              resolve(value);
            },
            (error: unknown) => {
              this.release(lock);
              reject(error);
            },
          );
      };
      this.queue.push({ name, mode, grant });
      setTimeout(() => this.pump(), 0);
    });
  }

  async query(): Promise<{ held: Array<{ name: string; mode: string }>; pending: Array<{ name: string; mode: string }> }> {
    return {
      held: this.held.map((l) => ({ ...l })),
      pending: this.queue.map((q) => ({ name: q.name, mode: q.mode })),
    };
  }

  private release(lock: { name: string; mode: string }): void {
    const i = this.held.indexOf(lock as { name: string; mode: 'exclusive' | 'shared' });
    if (i >= 0) this.held.splice(i, 1);
    setTimeout(() => this.pump(), 0);
  }

  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const req = this.queue[i]!;
      const holders = this.held.filter((l) => l.name === req.name);
      const earlierWaiting = this.queue.slice(0, i).some((q) => q.name === req.name);
      const ok =
        !earlierWaiting &&
        (holders.length === 0 || (req.mode === 'shared' && holders.every((h) => h.mode === 'shared')));
      if (ok) {
        this.queue.splice(i, 1);
        req.grant();
      } else i++;
    }
  }
}

export function installLocks(locks: FakeLocks | undefined): void {
  Object.defineProperty(navigator, 'locks', { value: locks, configurable: true, writable: true });
}

export function removeLocks(): void {
  Object.defineProperty(navigator, 'locks', { value: undefined, configurable: true, writable: true });
}

export function tick(ms = 0): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
