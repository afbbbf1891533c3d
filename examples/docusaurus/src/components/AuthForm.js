// The sign-up and sign-in form: the same fields, a different call.
import React, { useState } from 'react';
import Problem from '@site/src/components/Problem';

export default function AuthForm({ withName, submitLabel, onSubmit, testid }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await onSubmit(withName ? { email, password, name: name || undefined } : { email, password });
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} data-testid={testid} className="lanyard-form">
      {withName ? (
        <label>
          Name (optional)
          <input type="text" autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} name="name" />
        </label>
      ) : null}
      <label>
        Email
        <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} name="email" />
      </label>
      <label>
        Password
        <input
          type="password"
          autoComplete={withName ? 'new-password' : 'current-password'}
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          name="password"
        />
      </label>
      <button type="submit" className="button button--primary" disabled={busy} data-testid="submit">
        {submitLabel}
      </button>
      <Problem error={error} />
    </form>
  );
}
