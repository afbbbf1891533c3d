import { internalOf } from './client.js';
import type { Lanyard } from './types.js';

/** The parts of an axios request config this helper touches (structural: axios is not imported). */
export interface AxiosLikeRequestConfig {
  headers?: unknown;
  [key: string]: unknown;
}

/** The parts of an axios error this helper reads. */
export interface AxiosLikeError {
  config?: AxiosLikeRequestConfig;
  response?: { status?: number };
}

interface InterceptorManagerLike<V> {
  use(onFulfilled?: ((value: V) => V | Promise<V>) | null, onRejected?: ((error: any) => any) | null): number;
  eject(id: number): void;
}

/** The parts of an axios instance this helper uses (`axios` itself or `axios.create()`). */
export interface AxiosLikeInstance {
  interceptors: {
    request: InterceptorManagerLike<any>;
    response: InterceptorManagerLike<any>;
  };
  request(config: any): Promise<any>;
}

/** Marks a config that was already retried after a 401 (so it is retried at most once). */
const RETRIED = '__lanyardRetried';

function setHeader(config: AxiosLikeRequestConfig, name: string, value: string): void {
  const headers = config.headers as { set?: (n: string, v: string) => unknown; [k: string]: unknown } | undefined | null;
  if (headers && typeof headers.set === 'function') {
    headers.set(name, value); // axios >= 1: AxiosHeaders
  } else if (headers && typeof headers === 'object') {
    headers[name] = value;
  } else {
    config.headers = { [name]: value };
  }
}

function bearerOf(config: AxiosLikeRequestConfig | undefined): string | null {
  const headers = config?.headers as { get?: (n: string) => unknown; [k: string]: unknown } | undefined | null;
  if (!headers || typeof headers !== 'object') return null;
  let value: unknown = typeof headers.get === 'function' ? headers.get('Authorization') : undefined;
  if (value === undefined || value === null) value = headers['Authorization'] ?? headers['authorization'];
  if (typeof value !== 'string') return null;
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match?.[1] ?? null;
}

/**
 * Wires a Lanyard client into an axios instance: every request gets `Authorization: Bearer <token>`
 * (when signed in), and a 401 answer triggers one refresh and one retry of that request (403 and
 * everything else are passed through). Returns a function that removes both interceptors.
 */
export function attachAxios(lanyard: Lanyard, instance: AxiosLikeInstance): () => void {
  const requestId = instance.interceptors.request.use(async (config: AxiosLikeRequestConfig) => {
    const token = await lanyard.getAccessToken();
    if (token) setHeader(config, 'Authorization', `Bearer ${token}`);
    return config;
  });

  const responseId = instance.interceptors.response.use(null, async (error: AxiosLikeError) => {
    const config = error?.config;
    if (!config || error.response?.status !== 401 || config[RETRIED]) throw error;
    config[RETRIED] = true;
    const rejected = bearerOf(config);
    let token: string | null = null;
    try {
      const internal = internalOf(lanyard);
      if (internal) token = await internal.tokenAfterRejection(rejected);
      else token = (await lanyard.refresh()) ? await lanyard.getAccessToken() : null;
    } catch {
      token = null;
    }
    if (!token) throw error;
    setHeader(config, 'Authorization', `Bearer ${token}`);
    return instance.request(config);
  });

  return () => {
    instance.interceptors.request.eject(requestId);
    instance.interceptors.response.eject(responseId);
  };
}
