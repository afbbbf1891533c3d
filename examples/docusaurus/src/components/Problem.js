// Shows why a call failed: the problem's code and detail (RFC 9457) from a
// LanyardError, or the message of any other error (e.g. the network).
import React from 'react';
import { LanyardError } from '@lanyard/client';

const HINTS = {
  email_taken: 'An account with this email exists already: sign in instead.',
  invalid_credentials: 'Wrong email or password.',
  validation_failed: 'Check the fields and try again.',
  rate_limited: 'Too many attempts: wait a little and try again.',
  weak_password: 'Choose a longer password.',
};

export default function Problem({ error }) {
  if (!error) return null;
  const isLanyard = error instanceof LanyardError || (error && typeof error.code === 'string');
  const code = isLanyard ? error.code : 'network_error';
  const detail = (error.problem && error.problem.detail) || error.message;
  return (
    <div className="alert alert--danger margin-vert--md" role="alert" data-testid="error" data-code={code}>
      <strong data-testid="error-code">{code}</strong>
      {HINTS[code] ? <p className="margin-vert--sm">{HINTS[code]}</p> : null}
      {detail ? <p className="margin-bottom--none" data-testid="error-detail">{detail}</p> : null}
    </div>
  );
}
