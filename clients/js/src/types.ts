/** How the refresh token travels between Lanyard and the browser. */
export type TokenDelivery = 'cookie' | 'body';

/** Allowed values of `python_proficiency` (openapi.yaml `PythonProficiency`). */
export const PYTHON_PROFICIENCIES = ['none', 'beginner', 'intermediate', 'advanced'] as const;
export type PythonProficiency = (typeof PYTHON_PROFICIENCIES)[number];

/** Allowed values of `developer_role` (openapi.yaml `DeveloperRole`). */
export const DEVELOPER_ROLES = [
  'student',
  'hobbyist',
  'software_engineer',
  'data_scientist',
  'ml_engineer',
  'robotics_engineer',
  'researcher',
  'educator',
  'other',
] as const;
export type DeveloperRole = (typeof DEVELOPER_ROLES)[number];

/** The onboarding profile. */
export interface Profile {
  python_proficiency: PythonProficiency;
  developer_role: DeveloperRole;
  /** When onboarding was completed (RFC 3339); sent by the server, may be absent or null. */
  completed_at?: string | null;
}

/** A Lanyard user, as the server sends it. */
export interface User {
  id: string;
  email: string;
  name?: string | null;
  created_at: string;
  profile_complete: boolean;
  profile: Profile | null;
}

/** The signed-in state the client exposes. */
export interface Session {
  user: User;
  profileComplete: boolean;
  profile: Profile | null;
}

/** An RFC 9457 problem details object as Lanyard (and well-behaved backends) send it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  errors?: Array<{ field: string; message: string; [key: string]: unknown }>;
  [key: string]: unknown;
}

export interface LanyardOptions {
  /** Base URL of the Lanyard server, e.g. `https://auth.example.com` (a trailing slash is ignored). */
  url: string;
  /** `'cookie'` (default): the refresh token lives in an HttpOnly cookie. `'body'`: memory + sessionStorage. */
  tokenDelivery?: TokenDelivery | undefined;
  /** Seconds before the access token expires at which it is refreshed proactively. Default 30. */
  refreshLeeway?: number | undefined;
  /** The fetch implementation to use; default `globalThis.fetch`, looked up at call time. */
  fetch?: typeof fetch | undefined;
}

export interface SignUpInput {
  email: string;
  password: string;
  name?: string | null | undefined;
}

export interface SignInInput {
  email: string;
  password: string;
}

export interface ProfileInput {
  python_proficiency: PythonProficiency;
  developer_role: DeveloperRole;
}

/**
 * What `lanyard.fetch` resolves with: the Response itself (body unread), plus, for a problem answer
 * (4xx/5xx with a JSON body that has a string `code`), the parsed body and its code. Both are `null` otherwise.
 */
export type LanyardResponse = Response & {
  readonly problem: Problem | null;
  readonly code: string | null;
};

export type SessionListener = (session: Session | null) => void;

export interface Lanyard {
  /** Creates an account and signs it in. Throws LanyardError on 4xx/5xx. */
  signUp(input: SignUpInput): Promise<Session>;
  /** Signs in. Throws LanyardError on 4xx/5xx (401 `invalid_credentials`, 429 `rate_limited`, ...). */
  signIn(input: SignInInput): Promise<Session>;
  /**
   * Moving from Better-Auth: trades the value of a live `better-auth.session_token` cookie for a Lanyard
   * session, once (`POST /v1/auth/exchange/better-auth`). Throws LanyardError (400 `invalid_token` when
   * the session is unknown, expired or already exchanged; 404 when the server does not offer the exchange).
   */
  exchangeBetterAuthSession(token: string): Promise<Session>;
  /**
   * Ends the session on the server and clears local state in this tab and the others.
   * Local state is cleared even if the server call fails; the promise then rejects with the error.
   */
  signOut(): Promise<void>;
  /** Refreshes now (single-flight). Resolves with the session, or null when there is none (signed out). */
  refresh(): Promise<Session | null>;
  /**
   * A valid access token, refreshing first if it is missing or about to expire (this restores the
   * session after a reload). Null when signed out. Rejects with LanyardError when the refresh fails
   * for another reason (network, 5xx, 429) and no still-valid token is held.
   */
  getAccessToken(): Promise<string | null>;
  /** PUT /v1/me/profile; adopts the new access token the server returns. */
  updateProfile(input: ProfileInput): Promise<Session>;
  /**
   * fetch with `Authorization: Bearer`; on 401 refreshes once and retries once; never retries 403.
   * Resolves with the Response for every status. Rejects on network errors, or with
   * LanyardError{code:'unauthorized'} when signed out.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<LanyardResponse>;
  /** The current session, or null. The same object until it changes. */
  readonly session: Session | null;
  /** Calls `listener` whenever the session changes (sign-in, refresh with new data, sign-out, other tabs). */
  subscribe(listener: SessionListener): () => void;
}
