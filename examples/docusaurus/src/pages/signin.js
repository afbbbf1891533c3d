import React from 'react';
import Layout from '@theme/Layout';
import Link from '@docusaurus/Link';
import { useHistory } from '@docusaurus/router';
import { useLanyard } from '@lanyard/client/react';
import AuthForm from '@site/src/components/AuthForm';

export default function SignIn() {
  const lanyard = useLanyard();
  const history = useHistory();
  const signIn = async (fields) => {
    const session = await lanyard.signIn(fields);
    history.push(session.profileComplete ? '/chapter' : '/onboarding');
  };
  return (
    <Layout title="Sign in">
      <main className="container margin-vert--lg lanyard-narrow">
        <h1>Sign in</h1>
        <AuthForm submitLabel="Sign in" onSubmit={signIn} testid="signin-form" />
        <p className="margin-top--md">
          New here? <Link to="/signup">Create an account</Link>
        </p>
      </main>
    </Layout>
  );
}
