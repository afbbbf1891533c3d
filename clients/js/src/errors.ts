import type { Problem } from './types.js';

/** An error answer from Lanyard (or a network failure: status 0, code `network_error`). */
export class LanyardError extends Error {
  /** HTTP status; 0 for a network error. */
  readonly status: number;
  /** The problem `code` (e.g. `invalid_credentials`, `email_taken`, `rate_limited`, `unavailable`, `unauthorized`). */
  readonly code: string;
  /** The parsed problem+json body, or null when there was none. */
  readonly problem: Problem | null;
  /** Seconds from the `Retry-After` header (429/503), or null. */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: string,
    problem: Problem | null = null,
    message?: string,
    options?: { cause?: unknown; retryAfter?: number | null },
  ) {
    super(message ?? describe(status, code, problem), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LanyardError';
    this.status = status;
    this.code = code;
    this.problem = problem;
    this.retryAfter = options?.retryAfter ?? null;
  }
}

function describe(status: number, code: string, problem: Problem | null): string {
  let text = problem?.detail ?? problem?.title ?? `Lanyard request failed (${status || 'network'}: ${code})`;
  if (Array.isArray(problem?.errors) && problem.errors.length) {
    text += ': ' + problem.errors.map((e) => `${String(e?.field)} ${String(e?.message)}`).join('; ');
  }
  return text;
}

export function fallbackCode(status: number): string {
  switch (status) {
    case 400:
      return 'validation_failed';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 429:
      return 'rate_limited';
    case 503:
      return 'unavailable';
    default:
      return status >= 500 ? 'internal' : `http_${status}`;
  }
}

/** Parses `Retry-After` (delta-seconds or HTTP date) into seconds. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

function isJson(res: Response): boolean {
  const ct = res.headers.get('content-type') ?? '';
  return /[/+]json\b/i.test(ct);
}

/** Reads a problem body from a clone of `res` (the original stays readable). Null when not a JSON object. */
export async function readProblem(res: Response): Promise<Problem | null> {
  if (!isJson(res)) return null;
  try {
    const body: unknown = await res.clone().json();
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) return body as Problem;
  } catch {
    // not JSON after all
  }
  return null;
}

/** Builds a LanyardError from an error answer (reads the body of `res`). */
export async function errorFromResponse(res: Response): Promise<LanyardError> {
  const problem = await readProblem(res);
  const code = typeof problem?.code === 'string' && problem.code ? problem.code : fallbackCode(res.status);
  return new LanyardError(res.status, code, problem, undefined, {
    retryAfter: parseRetryAfter(res.headers.get('retry-after')),
  });
}
