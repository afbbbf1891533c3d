import React from 'react';
import Layout from '@theme/Layout';
import Link from '@docusaurus/Link';
import { useSession } from '@lanyard/client/react';

export default function Home() {
  const { status, session } = useSession();
  return (
    <Layout title="Home">
      <main className="container margin-vert--lg">
        <h1>Robotics for Python developers</h1>
        <p>
          This book adapts to you: sign up, say how much Python you know and what you do, and Chapter 1 is written
          for you.
        </p>
        {status === 'signed-in' && session ? (
          <p data-testid="home-signed-in">
            Signed in as {session.user.email}. <Link to="/chapter">Read Chapter 1</Link>
          </p>
        ) : (
          <p>
            <Link className="button button--primary" to="/signup">Sign up</Link>{' '}
            <Link className="button button--secondary" to="/signin">Sign in</Link>
          </p>
        )}
      </main>
    </Layout>
  );
}
