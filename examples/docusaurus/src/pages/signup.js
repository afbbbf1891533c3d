import React from 'react';
import Layout from '@theme/Layout';
import Link from '@docusaurus/Link';
import { useHistory } from '@docusaurus/router';
import { useLanyard } from '@lanyard/client/react';
import AuthForm from '@site/src/components/AuthForm';

export default function SignUp() {
  const lanyard = useLanyard();
  const history = useHistory();
  const signUp = async (fields) => {
    const session = await lanyard.signUp(fields);
    history.push(session.profileComplete ? '/chapter' : '/onboarding');
  };
  return (
    <Layout title="Sign up">
      <main className="container margin-vert--lg lanyard-narrow">
        <h1>Create your account</h1>
        <p>One account for the whole book. Next, tell us how much Python you know.</p>
        <AuthForm withName submitLabel="Sign up" onSubmit={signUp} testid="signup-form" />
        <p className="margin-top--md">
          Have an account? <Link to="/signin">Sign in</Link>
        </p>
      </main>
    </Layout>
  );
}
