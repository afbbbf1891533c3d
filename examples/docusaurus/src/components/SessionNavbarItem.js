// The navbar's session corner: who is signed in and a sign-out button, or
// links to sign in and sign up. Follows other tabs too: the client broadcasts
// sign-in and sign-out, and useSession re-renders.
import React, { useState } from 'react';
import Link from '@docusaurus/Link';
import { useSession } from '@lanyard/client/react';

export default function SessionNavbarItem({ mobile }) {
  const { status, session, lanyard } = useSession();
  const [busy, setBusy] = useState(false);
  const cls = mobile ? 'menu__list-item' : 'navbar__item';

  if (status === 'loading') {
    return <span className={cls} data-testid="session-status" data-status="loading">…</span>;
  }
  if (status !== 'signed-in' || !session) {
    return (
      <span className={cls} data-testid="session-status" data-status="signed-out">
        <Link className="navbar__link" to="/signin" data-testid="nav-signin">Sign in</Link>
        <Link className="navbar__link" to="/signup" data-testid="nav-signup">Sign up</Link>
      </span>
    );
  }
  const signOut = async () => {
    setBusy(true);
    try {
      await lanyard.signOut(); // clears local state even when the server call fails
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className={cls} data-testid="session-status" data-status="signed-in">
      <span className="navbar__link" data-testid="session-email">{session.user.email}</span>
      <button
        type="button"
        className="button button--sm button--secondary"
        onClick={signOut}
        disabled={busy}
        data-testid="signout"
      >
        Sign out
      </button>
    </span>
  );
}
