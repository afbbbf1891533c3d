// Swizzled Root (wraps the whole app, above every page and the navbar):
// provides the Lanyard client and the session to every component.
import React, { useCallback, useEffect, useState } from 'react';
import useDocusaurusContext from '@docusaurus/useDocusaurusContext';
import { useHistory } from '@docusaurus/router';
import { LanyardProvider } from '@lanyard/client/react';
import { getLanyard } from '@site/src/lanyard';

export default function Root({ children }) {
  const { siteConfig } = useDocusaurusContext();
  const [client] = useState(() => getLanyard(siteConfig.customFields.lanyardUrl));
  const history = useHistory();
  // Client-side navigation: redirects by RequireAuth/RequireProfile and after
  // sign-in keep the page (and the access token in memory) alive.
  const navigate = useCallback((to) => history.push(to), [history]);
  useEffect(() => {
    // Marks the page as hydrated (interactive): the e2e tests wait for it before typing.
    document.documentElement.dataset.hydrated = 'true';
  }, []);
  return (
    <LanyardProvider client={client} navigate={navigate}>
      {children}
    </LanyardProvider>
  );
}
