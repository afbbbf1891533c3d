// The personalised chapter. RequireProfile sends a reader who is not signed in
// to /signin and one without an onboarding profile to /onboarding; the content
// comes from the FastAPI example (GET /chapters/personalised), called through
// lanyard.fetch, which adds the access token and refreshes once on a 401.
import React, { useCallback, useEffect, useRef, useState } from 'react';
import Layout from '@theme/Layout';
import useDocusaurusContext from '@docusaurus/useDocusaurusContext';
import { useHistory } from '@docusaurus/router';
import { RequireProfile, useLanyard } from '@lanyard/client/react';
import Problem from '@site/src/components/Problem';

// What this site adds per python_proficiency, on top of the backend's text.
const FIRST_STEPS = {
  none: {
    heading: 'Your first Python',
    code: 'print("Hello, robot!")',
    note: 'Type this line, run it, and you have written a program.',
  },
  beginner: {
    heading: 'A loop that drives',
    code: 'for step in range(10):\n    robot.forward(0.1)',
    note: 'A for loop repeats the move ten times.',
  },
  intermediate: {
    heading: 'A controller class',
    code: 'class Follower:\n    def __init__(self, robot):\n        self.robot = robot\n\n    def tick(self):\n        self.robot.steer(self.robot.line_offset() * -0.5)',
    note: 'Wrap the robot in a class and give it one tick per sensor reading.',
  },
  advanced: {
    heading: 'Async control loop',
    code: 'async def control(robot):\n    async for frame in robot.sensors():\n        await robot.steer(pid(frame.offset))',
    note: 'The sensors are an async iterator; the PID lives in its own module.',
  },
};

function Chapter() {
  const { siteConfig } = useDocusaurusContext();
  const lanyard = useLanyard();
  const history = useHistory();
  const [chapter, setChapter] = useState(null);
  const [error, setError] = useState(null);
  const [loads, setLoads] = useState(0);
  const [busy, setBusy] = useState(false);
  const mounted = useRef(true);

  const load = useCallback(async () => {
    setBusy(true);
    setError(null);
    try {
      const res = await lanyard.fetch(`${siteConfig.customFields.backendUrl}/chapters/personalised`);
      if (!mounted.current) return;
      if (res.ok) {
        const data = await res.json();
        if (!mounted.current) return;
        setChapter(data);
        setLoads((n) => n + 1);
      } else if (res.code === 'profile_incomplete') {
        // The backend's word wins: its token said the profile is incomplete.
        history.replace('/onboarding');
      } else {
        setError({ code: res.code || `http_${res.status}`, problem: res.problem || null, message: res.statusText });
      }
    } catch (err) {
      // LanyardError 'unauthorized': signed out meanwhile (RequireProfile redirects); else the network.
      if (mounted.current) setError(err);
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, [lanyard, history, siteConfig]);

  useEffect(() => {
    mounted.current = true;
    load();
    return () => {
      mounted.current = false;
    };
  }, [load]);

  const steps = chapter && (FIRST_STEPS[chapter.python_proficiency] || FIRST_STEPS.beginner);
  return (
    <>
      <Problem error={error} />
      {chapter ? (
        <article data-testid="chapter" data-proficiency={chapter.python_proficiency} data-role={chapter.developer_role}>
          <h1 data-testid="chapter-title">
            Chapter {chapter.chapter}: {chapter.title}
          </h1>
          <p className="margin-bottom--sm">
            Written for a reader with <strong data-testid="chapter-proficiency">{chapter.python_proficiency}</strong> Python,
            working as <strong data-testid="chapter-role">{chapter.developer_role}</strong>.
          </p>
          <p className="lanyard-lead" data-testid="chapter-opening">{chapter.opening}</p>
          <p>
            Our running example: <span data-testid="chapter-example">{chapter.example}</span>.
          </p>
          <section data-testid="chapter-first-steps" data-level={chapter.python_proficiency}>
            <h2>{steps.heading}</h2>
            <pre>
              <code>{steps.code}</code>
            </pre>
            <p>{steps.note}</p>
          </section>
        </article>
      ) : (
        !error && <p data-testid="chapter-loading">Loading your chapter…</p>
      )}
      <p className="margin-top--lg">
        <button type="button" className="button button--outline button--primary" onClick={load} disabled={busy} data-testid="chapter-reload">
          Fetch the chapter again
        </button>{' '}
        <small>
          loaded <span data-testid="chapter-loads">{loads}</span> time(s)
        </small>
      </p>
    </>
  );
}

export default function ChapterPage() {
  return (
    <Layout title="Chapter 1">
      <main className="container margin-vert--lg">
        <RequireProfile redirectTo="/onboarding" signInTo="/signin" fallback={<p data-testid="loading">Loading…</p>}>
          <Chapter />
        </RequireProfile>
      </main>
    </Layout>
  );
}
