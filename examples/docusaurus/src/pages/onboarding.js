import React, { useState } from 'react';
import Layout from '@theme/Layout';
import { useHistory } from '@docusaurus/router';
import { RequireAuth, useSession } from '@lanyard/client/react';
import Problem from '@site/src/components/Problem';
import { DEVELOPER_ROLE, PYTHON_PROFICIENCY } from '@site/src/profile';

function OnboardingForm() {
  const { session, lanyard } = useSession();
  const history = useHistory();
  const current = session && session.profile;
  const [level, setLevel] = useState(current ? current.python_proficiency : '');
  const [role, setRole] = useState(current ? current.developer_role : '');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      // PUT /v1/me/profile; the client adopts the new access token, which
      // carries the profile, so the backend personalises at once.
      await lanyard.updateProfile({ python_proficiency: level, developer_role: role });
      history.push('/chapter');
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} data-testid="onboarding-form" className="lanyard-form">
      <label>
        How much Python do you know?
        <select required value={level} onChange={(e) => setLevel(e.target.value)} name="python_proficiency" data-testid="python-proficiency">
          <option value="" disabled>Choose…</option>
          {PYTHON_PROFICIENCY.map(([value, label]) => (
            <option key={value} value={value}>{label}</option>
          ))}
        </select>
      </label>
      <label>
        What do you do?
        <select required value={role} onChange={(e) => setRole(e.target.value)} name="developer_role" data-testid="developer-role">
          <option value="" disabled>Choose…</option>
          {DEVELOPER_ROLE.map(([value, label]) => (
            <option key={value} value={value}>{label}</option>
          ))}
        </select>
      </label>
      <button type="submit" className="button button--primary" disabled={busy || !level || !role} data-testid="submit">
        Continue to the chapter
      </button>
      <Problem error={error} />
    </form>
  );
}

export default function Onboarding() {
  return (
    <Layout title="About you">
      <main className="container margin-vert--lg lanyard-narrow">
        <h1>About you</h1>
        <p>Two questions, so that the book starts where you are.</p>
        <RequireAuth redirectTo="/signin" fallback={<p data-testid="loading">Loading…</p>}>
          <OnboardingForm />
        </RequireAuth>
      </main>
    </Layout>
  );
}
