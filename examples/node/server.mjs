// A tiny node:http backend that trusts Lanyard access tokens.
//
//   LANYARD_ISSUER=http://127.0.0.1:8080 PORT=8001 node server.mjs
//
// Routes:
//   GET /public                 open to anyone
//   GET /me                     any signed-in user (401 without a valid access token)
//   GET /chapters/personalised  needs a complete onboarding profile (401, then 403 profile_incomplete)
//
// The personalised chapter is built from the token's `profile` claim alone: no
// database, no call to Lanyard per request.

import http from 'node:http';
import { pathToFileURL } from 'node:url';

import { createVerifierFromEnv, withAuth } from './lanyard-auth.mjs';

// How the first chapter opens, by python_proficiency.
const OPENINGS = {
  none: 'Start here: what a program is, and your first line of Python.',
  beginner: 'A quick refresher on variables, loops and functions, then on to the robot.',
  intermediate: "Skip the basics: we go straight to classes, modules and the robot's API.",
  advanced: "The short version: the robot's API, its concurrency model and where to extend it.",
};

// What the examples are about, by developer_role.
const EXAMPLES = {
  student: 'a line-following robot for a class project',
  hobbyist: 'a weekend rover built from a kit',
  software_engineer: 'a tested, packaged controller service',
  data_scientist: 'logging sensor data and plotting it',
  ml_engineer: "training a small model on the robot's camera frames",
  robotics_engineer: 'closed-loop motor control with ROS 2',
  researcher: 'a reproducible experiment with recorded runs',
  educator: 'a lesson plan your students can follow',
  other: 'a small robot that avoids obstacles',
};

function sendJSON(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** The app's request listener, verifying tokens with `verify` (see createVerifier). */
export function createApp(verify) {
  const routes = {
    '/public': (req, res) => sendJSON(res, 200, { message: 'anyone can read this' }),

    '/me': withAuth(verify, (req, res, claims) =>
      sendJSON(res, 200, { user_id: claims.sub, email: claims.email ?? null, profile_complete: claims.profile_complete })),

    '/chapters/personalised': withAuth(verify, (req, res, claims) => {
      const { python_proficiency: level, developer_role: role } = claims.profile;
      sendJSON(res, 200, {
        chapter: 1,
        title: 'Your first robot program',
        python_proficiency: level,
        developer_role: role,
        // Values added to Lanyard later fall back to the general text instead of failing.
        opening: Object.hasOwn(OPENINGS, level) ? OPENINGS[level] : OPENINGS.beginner,
        example: Object.hasOwn(EXAMPLES, role) ? EXAMPLES[role] : EXAMPLES.other,
      });
    }, { requireCompleteProfile: true }),
  };

  return async (req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    const route = Object.hasOwn(routes, pathname) ? routes[pathname] : null;
    if (route === null) return sendJSON(res, 404, { error: 'not found' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendJSON(res, 405, { error: 'method not allowed' });
    }
    try {
      await route(req, res);
    } catch (err) {
      console.error('request failed:', err);
      if (!res.headersSent) sendJSON(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const port = Number(process.env.PORT ?? 8001);
  const host = process.env.HOST ?? '127.0.0.1';
  http.createServer(createApp(createVerifierFromEnv())).listen(port, host, () => {
    console.log(`listening on http://${host}:${port}`);
  });
}
