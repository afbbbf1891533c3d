import { LanyardError, errorFromResponse, readProblem } from './errors.js';
import type {
  Lanyard,
  LanyardOptions,
  LanyardResponse,
  Problem,
  Profile,
  ProfileInput,
  Session,
  SessionListener,
  SignInInput,
  SignUpInput,
  User,
} from './types.js';

/** Internal hook used by attachAxios (not part of the public API). */
export const INTERNAL: unique symbol = Symbol.for('@lanyard/client.internal');

export interface LanyardInternal {
  /** A token to retry with after `rejected` got a 401: a newer one if another call already refreshed, else refresh. */
  tokenAfterRejection(rejected: string | null): Promise<string | null>;
}

/** How long a tab that waited for the refresh lock waits for the other tab's broadcast. */
const BROADCAST_WAIT_MS = 3000;
/** Fallback (no Web Locks) claim window. */
const CLAIM_WINDOW_MS = 60;
/** Fallback: how long to wait for a holder's release before assuming it is gone. */
const FALLBACK_HOLD_TIMEOUT_MS = 10000;
/** Retry delay for a failed proactive refresh while the token is still valid. */
const PROACTIVE_RETRY_MS = 15000;
const MAX_TIMER_MS = 2 ** 31 - 1;

type SessionMessage = {
  type: 'session';
  from: string;
  delivery: string;
  gen: number;
  accessToken: string;
  expiresAt: number;
  refreshAt: number;
  session: Session;
  refreshToken?: string;
};
type SignedOutMessage = { type: 'signed-out'; from: string; delivery: string };
type LockMessage =
  | { type: 'lock-claim'; from: string; delivery: string; ts: number }
  | { type: 'lock-held'; from: string; delivery: string }
  | { type: 'lock-release'; from: string; delivery: string };
type Message = SessionMessage | SignedOutMessage | LockMessage;

interface TokenJson {
  access_token?: unknown;
  expires_in?: unknown;
  refresh_token?: unknown;
  user?: unknown;
}

interface LockManagerLike {
  request(name: string, options: { mode?: 'exclusive' | 'shared' }, callback: (lock: unknown) => unknown): Promise<unknown>;
  query?(): Promise<{ held?: Array<{ name?: string }>; pending?: Array<{ name?: string }> }>;
}

function randomId(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function getSessionStorage(): Storage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null; // access can throw (sandboxed iframe, storage disabled)
  }
}

function getLocks(): LockManagerLike | null {
  if (typeof navigator === 'undefined') return null;
  const locks = (navigator as { locks?: LockManagerLike }).locks;
  return locks && typeof locks.request === 'function' ? locks : null;
}

function sessionFromUser(user: User): Session {
  return { user, profileComplete: user.profile_complete === true, profile: user.profile ?? null };
}

function sameSession(a: Session | null, b: Session | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

function networkError(cause: unknown): LanyardError {
  if (cause instanceof LanyardError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new LanyardError(0, 'network_error', null, `Could not reach Lanyard: ${detail}`, { cause });
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // ignore
  }
}

function decorate(res: Response, problem: Problem | null): LanyardResponse {
  const code = problem && typeof problem.code === 'string' ? problem.code : null;
  Object.defineProperty(res, 'problem', { value: problem, enumerable: true, configurable: true });
  Object.defineProperty(res, 'code', { value: code, enumerable: true, configurable: true });
  return res as LanyardResponse;
}

/**
 * Creates a Lanyard client. In a browser it starts listening to the other tabs at once; during server-side
 * rendering (no window) no browser API is touched until a method is first used.
 */
export function createLanyard(options: LanyardOptions): Lanyard {
  if (!options || typeof options.url !== 'string' || options.url.trim() === '') {
    throw new TypeError('createLanyard: `url` (the Lanyard base URL) is required');
  }
  const delivery = options.tokenDelivery ?? 'cookie';
  if (delivery !== 'cookie' && delivery !== 'body') {
    throw new TypeError(`createLanyard: tokenDelivery must be 'cookie' or 'body', got ${String(delivery)}`);
  }
  const leeway = options.refreshLeeway ?? 30;
  if (typeof leeway !== 'number' || !Number.isFinite(leeway) || leeway < 0) {
    throw new TypeError('createLanyard: refreshLeeway must be a non-negative number of seconds');
  }
  const leewayMs = leeway * 1000;
  const baseUrl = options.url.trim().replace(/\/+$/, '');
  const channelName = `lanyard:${baseUrl}`;
  const lockName = `lanyard:refresh:${baseUrl}`;
  const genLockPrefix = `${lockName}:gen:`;
  const storageKey = `lanyard:refresh:${baseUrl}`;
  const userFetch = options.fetch;

  // ---- state (memory only) ----
  let tabId = '';
  let initialized = false;
  let channel: BroadcastChannel | null = null;
  let accessToken: string | null = null;
  let expiresAt = 0;
  let refreshAt = 0;
  let session: Session | null = null;
  let refreshToken: string | null = null; // body mode only
  let signedOutKnown = false;
  let version = 0;
  let lastGen = 0; // highest refresh generation seen (own or broadcast)
  let releaseGenLock: (() => void) | null = null;
  let inflight: Promise<Session | null> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const listeners = new Set<SessionListener>();
  const genWaiters = new Set<() => void>();
  // fallback lock (BroadcastChannel) state
  let holdingFallback = false;
  let remoteHolder: string | null = null;
  const remoteClaims = new Map<string, { ts: number; at: number }>();
  const releaseWaiters = new Set<() => void>();

  function doFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    if (userFetch) {
      const f = userFetch;
      return f(input, init);
    }
    return globalThis.fetch(input, init);
  }

  function init(): void {
    if (initialized) return;
    initialized = true;
    tabId = randomId();
    if (typeof BroadcastChannel === 'function') {
      try {
        channel = new BroadcastChannel(channelName);
        channel.onmessage = (event: MessageEvent) => onMessage(event.data);
        // Node's BroadcastChannel would keep a script alive; browsers have no unref.
        (channel as unknown as { unref?: () => void }).unref?.();
      } catch {
        channel = null;
      }
    }
    if (delivery === 'body') {
      try {
        refreshToken = getSessionStorage()?.getItem(storageKey) ?? null;
      } catch {
        refreshToken = null;
      }
    }
  }

  function post(message: Message): void {
    try {
      channel?.postMessage(message);
    } catch {
      // ignore: other tabs will catch up on their next refresh
    }
  }

  function notify(): void {
    const current = session;
    for (const listener of [...listeners]) {
      try {
        listener(current);
      } catch (error) {
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }

  function persistRefreshToken(token: string | null): void {
    if (delivery !== 'body') return;
    refreshToken = token;
    const store = getSessionStorage();
    if (!store) return;
    try {
      if (token) store.setItem(storageKey, token);
      else store.removeItem(storageKey);
    } catch {
      // storage full or disabled: the token stays in memory
    }
  }

  function schedule(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (!accessToken || typeof window === 'undefined') return;
    timer = setTimeout(proactiveRefresh, Math.min(MAX_TIMER_MS, Math.max(0, refreshAt - Date.now())));
  }

  function proactiveRefresh(): void {
    timer = undefined;
    if (!accessToken) return;
    if (Date.now() < refreshAt) {
      schedule();
      return;
    }
    refreshCoordinated().catch((error: unknown) => {
      // A transient failure (network, 429, 5xx) with the token still valid: try again later, once per
      // PROACTIVE_RETRY_MS (or Retry-After), until it expires; getAccessToken() also retries on demand.
      const left = expiresAt - Date.now();
      if (!accessToken || left <= 0 || timer !== undefined) return;
      const retryAfterMs = error instanceof LanyardError && error.retryAfter ? error.retryAfter * 1000 : 0;
      const delay = Math.max(PROACTIVE_RETRY_MS, retryAfterMs);
      if (delay < left) timer = setTimeout(proactiveRefresh, delay);
    });
  }

  function setTokens(token: string, newExpiresAt: number, newRefreshAt: number, newSession: Session): void {
    const changed = !sameSession(session, newSession);
    accessToken = token;
    expiresAt = newExpiresAt;
    refreshAt = newRefreshAt;
    if (changed) session = newSession;
    signedOutKnown = false;
    version++;
    schedule();
    if (changed) notify();
  }

  function clearState(): void {
    const had = session !== null;
    accessToken = null;
    expiresAt = 0;
    refreshAt = 0;
    session = null;
    persistRefreshToken(null);
    signedOutKnown = true;
    version++;
    schedule();
    if (had) notify();
  }

  /** Adopts a token answer; `sentAt` is when the request left (expiry counted conservatively from then). */
  function adopt(json: TokenJson, sentAt: number, status: number): Session {
    if (typeof json.access_token !== 'string' || json.access_token === '') {
      throw new LanyardError(status, 'invalid_response', null, 'Lanyard answered without an access_token');
    }
    const lifetimeMs = Math.max(1, Number(json.expires_in) || 60) * 1000;
    const newExpiresAt = sentAt + lifetimeMs;
    const newRefreshAt = newExpiresAt - Math.min(leewayMs, lifetimeMs / 2);
    let newSession: Session | null = null;
    if (json.user && typeof json.user === 'object') newSession = sessionFromUser(json.user as User);
    else if (session) newSession = session;
    if (!newSession) throw new LanyardError(status, 'invalid_response', null, 'Lanyard answered without a user');
    if (delivery === 'body' && typeof json.refresh_token === 'string' && json.refresh_token) {
      persistRefreshToken(json.refresh_token);
    }
    setTokens(json.access_token, newExpiresAt, newRefreshAt, newSession);
    return session as Session;
  }

  function publishSession(gen: number): void {
    if (!accessToken || !session) return;
    const message: SessionMessage = {
      type: 'session',
      from: tabId,
      delivery,
      gen,
      accessToken,
      expiresAt,
      refreshAt,
      session,
    };
    if (delivery === 'body' && refreshToken) message.refreshToken = refreshToken;
    post(message);
  }

  function publishSignedOut(): void {
    post({ type: 'signed-out', from: tabId, delivery });
  }

  function seeGen(gen: number): void {
    if (gen > lastGen) lastGen = gen;
    for (const wake of [...genWaiters]) wake();
  }

  function waitForGen(gen: number, timeoutMs: number): Promise<void> {
    if (lastGen >= gen) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        if (lastGen < gen && !timedOut) return;
        genWaiters.delete(done);
        clearTimeout(t);
        resolve();
      };
      let timedOut = false;
      const t = setTimeout(() => {
        timedOut = true;
        done();
      }, timeoutMs);
      genWaiters.add(done);
    });
  }

  function onMessage(data: unknown): void {
    if (!data || typeof data !== 'object') return;
    const message = data as Message;
    if (message.from === tabId || message.delivery !== delivery) return;
    switch (message.type) {
      case 'session': {
        if (typeof message.accessToken !== 'string' || !message.session) return;
        const gen = Number(message.gen) || 0;
        // A refresh result older than what this tab holds (messages of two tabs can cross): keep ours.
        const stale =
          gen > 0 &&
          accessToken !== null &&
          session?.user.id === message.session.user?.id &&
          Number(message.expiresAt) < expiresAt;
        if (stale) {
          seeGen(gen);
          return;
        }
        if (delivery === 'body' && typeof message.refreshToken === 'string') persistRefreshToken(message.refreshToken);
        setTokens(message.accessToken, Number(message.expiresAt), Number(message.refreshAt), message.session);
        seeGen(gen);
        return;
      }
      case 'signed-out':
        clearState();
        return;
      case 'lock-claim':
        if (holdingFallback) post({ type: 'lock-held', from: tabId, delivery });
        remoteClaims.set(message.from, { ts: Number(message.ts), at: Date.now() });
        return;
      case 'lock-held':
        remoteHolder = message.from;
        return;
      case 'lock-release':
        remoteClaims.delete(message.from);
        if (remoteHolder === message.from) remoteHolder = null;
        for (const wake of [...releaseWaiters]) wake();
        return;
      default:
        return;
    }
  }

  // ---- cross-tab mutual exclusion ----

  async function currentGenFromLocks(locks: LockManagerLike): Promise<number> {
    if (typeof locks.query !== 'function') return lastGen;
    try {
      const state = await locks.query();
      let max = 0;
      for (const lock of state.held ?? []) {
        if (typeof lock.name === 'string' && lock.name.startsWith(genLockPrefix)) {
          const n = Number(lock.name.slice(genLockPrefix.length));
          if (Number.isFinite(n) && n > max) max = n;
        }
      }
      return max;
    } catch {
      return lastGen;
    }
  }

  /**
   * Records a new refresh generation in the lock manager itself: this tab holds the (shared) lock
   * `<lock>:gen:<n>` until its next refresh. Granted before the refresh lock is released, so a tab that
   * acquires the refresh lock afterwards sees it in `locks.query()`, whatever the order in which it gets
   * the BroadcastChannel message carrying the token.
   */
  async function recordGen(locks: LockManagerLike | null): Promise<number> {
    let gen = lastGen + 1;
    if (locks && typeof locks.query === 'function') {
      gen = Math.max(gen, (await currentGenFromLocks(locks)) + 1);
      const previous = releaseGenLock;
      await new Promise<void>((granted) => {
        locks
          .request(`${genLockPrefix}${gen}`, { mode: 'shared' }, () => {
            granted();
            return new Promise<void>((release) => {
              releaseGenLock = release;
            });
          })
          .catch(() => granted());
      });
      previous?.();
    }
    lastGen = gen;
    return gen;
  }

  async function fallbackLock<T>(fn: () => Promise<T>): Promise<T> {
    const giveUpAt = Date.now() + FALLBACK_HOLD_TIMEOUT_MS;
    for (;;) {
      const ts = Date.now();
      post({ type: 'lock-claim', from: tabId, delivery, ts });
      await sleep(CLAIM_WINDOW_MS);
      const now = Date.now();
      let lost = remoteHolder !== null;
      for (const [id, claim] of remoteClaims) {
        if (now - claim.at > CLAIM_WINDOW_MS * 4) {
          remoteClaims.delete(id);
          continue;
        }
        if (claim.ts < ts || (claim.ts === ts && id < tabId)) lost = true;
      }
      if (!lost || now >= giveUpAt) break;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          releaseWaiters.delete(wake);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          remoteHolder = null; // the holder went away without releasing
          wake();
        }, Math.max(0, giveUpAt - Date.now()));
        releaseWaiters.add(wake);
      });
    }
    holdingFallback = true;
    post({ type: 'lock-held', from: tabId, delivery });
    try {
      return await fn();
    } finally {
      holdingFallback = false;
      post({ type: 'lock-release', from: tabId, delivery });
    }
  }

  // ---- HTTP ----

  async function authPost(path: string, body: unknown): Promise<Response> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const init: RequestInit = { method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store' };
    if (delivery === 'cookie') {
      headers['Lanyard-Token-Delivery'] = 'cookie';
      init.credentials = 'include';
    }
    try {
      return await doFetch(`${baseUrl}${path}`, init);
    } catch (error) {
      throw networkError(error);
    }
  }

  async function readJson(res: Response): Promise<TokenJson> {
    try {
      const json: unknown = await res.json();
      return json && typeof json === 'object' ? (json as TokenJson) : {};
    } catch (error) {
      throw new LanyardError(res.status, 'invalid_response', null, 'Lanyard answered with invalid JSON', { cause: error });
    }
  }

  /** One refresh request. Runs inside the cross-tab lock. */
  async function httpRefresh(locks: LockManagerLike | null): Promise<Session | null> {
    const startVersion = version;
    let body: Record<string, string> = {};
    if (delivery === 'body') {
      if (!refreshToken) {
        if (accessToken || session) clearState();
        signedOutKnown = true;
        return null;
      }
      body = { refresh_token: refreshToken };
    }
    const sentAt = Date.now();
    const res = await authPost('/v1/auth/refresh', body);
    if (res.ok) {
      const json = await readJson(res);
      if (version !== startVersion) return session; // signed in/out meanwhile: that state wins
      const result = adopt(json, sentAt, res.status);
      publishSession(await recordGen(locks));
      return result;
    }
    if (res.status === 401 || (delivery === 'body' && res.status === 400)) {
      await discard(res);
      if (version !== startVersion) return session;
      const had = accessToken !== null || session !== null;
      clearState();
      if (had) publishSignedOut();
      return null;
    }
    throw await errorFromResponse(res);
  }

  /** The single refresh in flight (in this tab), serialised across tabs. */
  function refreshCoordinated(): Promise<Session | null> {
    if (inflight) return inflight;
    const run = async (): Promise<Session | null> => {
      init();
      const startVersion = version;
      const locks = getLocks();
      const genBefore = locks ? await currentGenFromLocks(locks) : lastGen;
      const critical = async (): Promise<Session | null> => {
        if (locks) {
          const genNow = await currentGenFromLocks(locks);
          // Another tab refreshed while we waited: its token is on its way over the BroadcastChannel.
          if (genNow > genBefore && genNow > lastGen) await waitForGen(genNow, BROADCAST_WAIT_MS);
        }
        if (version !== startVersion) {
          if (accessToken && Date.now() < refreshAt) return session;
          if (!accessToken && signedOutKnown) return null;
        }
        return httpRefresh(locks);
      };
      if (locks) return (await locks.request(lockName, { mode: 'exclusive' }, critical)) as Session | null;
      if (channel) return fallbackLock(critical);
      return critical();
    };
    const promise = run();
    inflight = promise;
    const clear = (): void => {
      if (inflight === promise) inflight = null;
    };
    promise.then(clear, clear);
    return promise;
  }

  async function getAccessToken(): Promise<string | null> {
    init();
    if (accessToken && Date.now() < refreshAt) return accessToken;
    if (!accessToken && signedOutKnown) return null;
    if (delivery === 'body' && !accessToken && !refreshToken) {
      signedOutKnown = true;
      return null;
    }
    try {
      await refreshCoordinated();
    } catch (error) {
      if (accessToken && Date.now() < expiresAt) return accessToken;
      throw error;
    }
    return accessToken;
  }

  async function tokenAfterRejection(rejected: string | null): Promise<string | null> {
    init();
    if (accessToken && accessToken !== rejected && Date.now() < refreshAt) return accessToken;
    if (!accessToken && signedOutKnown) return null;
    await refreshCoordinated();
    return accessToken && accessToken !== rejected ? accessToken : null;
  }

  function withBearer(request: Request, token: string): Request {
    const headers = new Headers(request.headers);
    headers.set('Authorization', `Bearer ${token}`);
    return new Request(request, { headers });
  }

  async function lanyardFetch(input: RequestInfo | URL, init?: RequestInit): Promise<LanyardResponse> {
    const token = await getAccessToken();
    if (!token) throw new LanyardError(401, 'unauthorized', null, 'Not signed in');
    // Keep an unread copy so the request (body included) can be sent a second time after a 401.
    const original = new Request(input, init);
    let res = await doFetch(withBearer(original.clone(), token));
    if (res.status === 401) {
      let next: string | null = null;
      try {
        next = await tokenAfterRejection(token);
      } catch {
        next = null; // refresh failed: hand back the 401
      }
      if (next) {
        await discard(res);
        res = await doFetch(withBearer(original, next));
      }
    }
    return decorate(res, res.status >= 400 ? await readProblem(res) : null);
  }

  async function startSession(path: string, body: Record<string, string>): Promise<Session> {
    init();
    const sentAt = Date.now();
    const res = await authPost(path, body);
    if (!res.ok) throw await errorFromResponse(res);
    if (res.status === 202) {
      // LANYARD_EMAIL_VERIFICATION=required: accepted, but no session until the mailed link is followed.
      await discard(res);
      throw new LanyardError(202, 'verification_required', null, 'check your email: follow the link to verify the address, then sign in');
    }
    const json = await readJson(res);
    const result = adopt(json, sentAt, res.status);
    publishSession(0);
    return result;
  }

  async function fetchUser(token: string): Promise<User> {
    let res: Response;
    try {
      res = await doFetch(`${baseUrl}/v1/me`, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
    } catch (error) {
      throw networkError(error);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return (await res.json()) as User;
  }

  const client: Lanyard = {
    signUp(input: SignUpInput): Promise<Session> {
      const body: Record<string, string> = { email: input.email, password: input.password };
      if (input.name !== undefined && input.name !== null && input.name !== '') body.name = input.name;
      return startSession('/v1/auth/signup', body);
    },

    signIn(input: SignInInput): Promise<Session> {
      return startSession('/v1/auth/login', { email: input.email, password: input.password });
    },

    exchangeBetterAuthSession(token: string): Promise<Session> {
      return startSession('/v1/auth/exchange/better-auth', { token });
    },

    async signOut(): Promise<void> {
      init();
      if (inflight) await inflight.catch(() => null);
      let failure: LanyardError | null = null;
      try {
        let res: Response | null = null;
        if (delivery === 'cookie') res = await authPost('/v1/auth/logout', {});
        else if (refreshToken) res = await authPost('/v1/auth/logout', { refresh_token: refreshToken });
        if (res && !res.ok) failure = await errorFromResponse(res);
        else if (res) await discard(res);
      } catch (error) {
        failure = networkError(error);
      } finally {
        clearState();
        publishSignedOut();
      }
      if (failure) throw failure;
    },

    refresh(): Promise<Session | null> {
      return refreshCoordinated();
    },

    getAccessToken,

    async updateProfile(input: ProfileInput): Promise<Session> {
      const sentAt = Date.now();
      let res: LanyardResponse;
      try {
        res = await lanyardFetch(`${baseUrl}/v1/me/profile`, {
          method: 'PUT',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ python_proficiency: input.python_proficiency, developer_role: input.developer_role }),
          cache: 'no-store',
        });
      } catch (error) {
        throw networkError(error);
      }
      if (!res.ok) throw await errorFromResponse(res);
      const json = (await res.json()) as { profile?: Profile; access_token?: unknown; expires_in?: unknown };
      if (typeof json.access_token !== 'string' || !json.profile) {
        throw new LanyardError(res.status, 'invalid_response', null, 'Lanyard answered without profile/access_token');
      }
      const base = session?.user ?? (await fetchUser(json.access_token));
      const user: User = { ...base, profile_complete: true, profile: json.profile };
      const result = adopt({ access_token: json.access_token, expires_in: json.expires_in, user }, sentAt, res.status);
      publishSession(0);
      return result;
    },

    fetch: lanyardFetch,

    get session(): Session | null {
      return session;
    },

    subscribe(listener: SessionListener): () => void {
      init();
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };

  const internal: LanyardInternal = { tokenAfterRejection };
  Object.defineProperty(client, INTERNAL, { value: internal, enumerable: false });
  // In a browser, listen to the other tabs from the start: a page that only creates the client still
  // learns of a sign-in, sign-out or refresh elsewhere, and a tab that reloads beside another does not
  // send a refresh of its own. During server-side rendering (no window) nothing is touched.
  if (typeof window !== 'undefined' && typeof document !== 'undefined') init();
  return client;
}

export function internalOf(lanyard: Lanyard): LanyardInternal | null {
  const value = (lanyard as unknown as Record<symbol, unknown>)[INTERNAL];
  return value && typeof value === 'object' ? (value as LanyardInternal) : null;
}
