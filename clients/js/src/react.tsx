import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactElement,
  type ReactNode,
} from 'react';
import type { Lanyard, Session } from './types.js';

export type SessionStatus = 'loading' | 'signed-in' | 'signed-out';

export interface SessionState {
  /** `loading` until the provider's first restore attempt has finished (and always during SSR). */
  status: SessionStatus;
  session: Session | null;
  lanyard: Lanyard;
}

export type Navigate = (to: string) => void;

interface ContextValue {
  lanyard: Lanyard;
  navigate: Navigate;
  restored: boolean;
}

const LanyardContext = createContext<ContextValue | null>(null);

function defaultNavigate(to: string): void {
  if (typeof window !== 'undefined') window.location.assign(to);
}

const serverSnapshot = (): Session | null => null;

export interface LanyardProviderProps {
  /** The client from `createLanyard(...)`, created once (e.g. at module level). */
  client: Lanyard;
  /** How RequireAuth/RequireProfile redirect; default `window.location.assign`. Use your router's navigate. */
  navigate?: Navigate | undefined;
  children?: ReactNode;
}

/**
 * Makes the client available to the hooks and restores the session on mount (in an effect, so it is safe
 * during static rendering).
 */
export function LanyardProvider({ client, navigate, children }: LanyardProviderProps): ReactElement {
  const [restored, setRestored] = useState(false);
  const navigateRef = useRef<Navigate | undefined>(navigate);
  navigateRef.current = navigate;
  const stableNavigate = useCallback<Navigate>((to) => (navigateRef.current ?? defaultNavigate)(to), []);

  useEffect(() => {
    let live = true;
    client
      .getAccessToken()
      .catch(() => null)
      .then(() => {
        if (live) setRestored(true);
      });
    return () => {
      live = false;
    };
  }, [client]);

  const value = useMemo<ContextValue>(
    () => ({ lanyard: client, navigate: stableNavigate, restored }),
    [client, stableNavigate, restored],
  );
  return <LanyardContext.Provider value={value}>{children}</LanyardContext.Provider>;
}

function useLanyardContext(hook: string): ContextValue {
  const value = useContext(LanyardContext);
  if (!value) throw new Error(`${hook} must be used inside <LanyardProvider>`);
  return value;
}

/** The client passed to the nearest LanyardProvider. */
export function useLanyard(): Lanyard {
  return useLanyardContext('useLanyard').lanyard;
}

/** `{ status, session, lanyard }`, re-rendering on every session change (this tab or another). */
export function useSession(): SessionState {
  const { lanyard, restored } = useLanyardContext('useSession');
  const session = useSyncExternalStore(lanyard.subscribe, () => lanyard.session, serverSnapshot);
  const status: SessionStatus = session ? 'signed-in' : restored ? 'signed-out' : 'loading';
  return { status, session, lanyard };
}

export interface RequireAuthProps {
  /** Where to send a signed-out visitor. Default `/signin`. */
  redirectTo?: string | undefined;
  /** Rendered while loading and while redirecting. Default nothing. */
  fallback?: ReactNode;
  children?: ReactNode;
}

/** Renders its children only for a signed-in user; otherwise redirects to `redirectTo`. */
export function RequireAuth({ redirectTo = '/signin', fallback = null, children }: RequireAuthProps): ReactElement {
  const { navigate } = useLanyardContext('RequireAuth');
  const { status } = useSession();
  useEffect(() => {
    if (status === 'signed-out') navigate(redirectTo);
  }, [status, redirectTo, navigate]);
  return <>{status === 'signed-in' ? children : fallback}</>;
}

export interface RequireProfileProps {
  /** Where to send a signed-in user whose profile is incomplete. Default `/onboarding`. */
  redirectTo?: string | undefined;
  /** Where to send a signed-out visitor. Default `/signin`. */
  signInTo?: string | undefined;
  /** Rendered while loading and while redirecting. Default nothing. */
  fallback?: ReactNode;
  children?: ReactNode;
}

/**
 * Renders its children only for a signed-in user with a complete profile: not signed in → `signInTo`,
 * profile incomplete → `redirectTo`.
 */
export function RequireProfile({
  redirectTo = '/onboarding',
  signInTo = '/signin',
  fallback = null,
  children,
}: RequireProfileProps): ReactElement {
  const { navigate } = useLanyardContext('RequireProfile');
  const { status, session } = useSession();
  const complete = status === 'signed-in' && session?.profileComplete === true;
  const target = status === 'signed-out' ? signInTo : status === 'signed-in' && !complete ? redirectTo : null;
  useEffect(() => {
    if (target !== null) navigate(target);
  }, [target, navigate]);
  return <>{complete ? children : fallback}</>;
}
