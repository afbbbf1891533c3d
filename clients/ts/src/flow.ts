// End-to-end check of the TypeScript client generated from ../../openapi.yaml
// (src/schema.gen.ts, by openapi-typescript) and driven with openapi-fetch.
//
// Runs against a live Lanyard at $LANYARD_URL:
//   sign up -> GET /v1/me (profile_complete false)
//   -> PUT /v1/me/profile with an invalid enum (400 validation_failed, nothing written)
//   -> PUT /v1/me/profile -> GET /v1/me/profile
//   -> refresh -> GET /v1/me with the refreshed token (profile_complete true).
// Every status and key field is asserted; any failure exits non-zero.
//
// It also checks at compile time that the generated types reject values
// outside the spec's enums: see the @ts-expect-error lines below (tsc fails
// with "Unused '@ts-expect-error' directive" if they ever stop being errors).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.gen.js";

type Schemas = components["schemas"];
type Problem = Schemas["Problem"];
type DeveloperRole = Schemas["DeveloperRole"];
type PythonProficiency = Schemas["PythonProficiency"];
type ProfileRequest = Schemas["ProfileRequest"];

// Compile-time checks: the generated enums are closed unions of literals.
// @ts-expect-error "wizard" is not a DeveloperRole.
const notARole: DeveloperRole = "wizard";
const notAProfile: ProfileRequest = {
  // @ts-expect-error "expert" is not a PythonProficiency.
  python_proficiency: "expert",
  developer_role: "student",
};
void notARole;
void notAProfile;

const baseUrl = process.env.LANYARD_URL;
if (baseUrl === undefined || baseUrl === "") {
  console.error("flow: LANYARD_URL is not set (e.g. http://127.0.0.1:8080)");
  process.exit(2);
}

const client = createClient<paths>({ baseUrl });

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** The JSON claims of a compact JWS (no verification: the flow only reads them). */
function claims(jwt: string): Record<string, unknown> {
  const parts = jwt.split(".");
  assert.equal(parts.length, 3, "access token is a compact JWS");
  const payload = parts[1] ?? "";
  const decoded: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  assert.ok(decoded !== null && typeof decoded === "object", "claims are a JSON object");
  return decoded as Record<string, unknown>;
}

/** Asserts a problem+json error with the given status and code. */
function assertProblem(
  res: { error?: Problem | undefined; response: Response },
  status: number,
  code: string,
  step: string,
): Problem {
  assert.equal(res.response.status, status, `${step}: HTTP status`);
  assert.match(
    res.response.headers.get("content-type") ?? "",
    /^application\/problem\+json\b/,
    `${step}: content type`,
  );
  const problem = res.error;
  assert.ok(problem !== undefined, `${step}: a problem body`);
  assert.equal(problem.status, status, `${step}: problem.status`);
  assert.equal(problem.code, code, `${step}: problem.code`);
  assert.equal(typeof problem.title, "string", `${step}: problem.title`);
  assert.equal(typeof problem.detail, "string", `${step}: problem.detail`);
  return problem;
}

/** Asserts that a validation_failed problem names the field. */
function assertFieldError(problem: Problem, field: string): void {
  const fields = (problem.errors ?? []).map((e) => e.field);
  assert.ok(fields.includes(field), `errors name ${field}, got ${JSON.stringify(problem.errors)}`);
}

function assertNoStore(response: Response, step: string): void {
  assert.equal(response.headers.get("cache-control"), "no-store", `${step}: Cache-Control`);
}

async function main(): Promise<void> {
  const email = `flow-ts-${randomUUID()}@example.com`;
  const password = "correct horse battery staple (ts)";

  // 1. Sign up.
  const signup = await client.POST("/v1/auth/signup", {
    body: { email, password, name: "Flow TS" },
  });
  assert.equal(signup.response.status, 201, `sign-up: HTTP status (${JSON.stringify(signup.error)})`);
  assert.ok(signup.data, "sign-up: a body");
  assertNoStore(signup.response, "sign-up");
  // 202 (no tokens) only when the server requires verified addresses.
  assert.ok("access_token" in signup.data, "sign-up: a token response, not 202");
  const session = signup.data;
  assert.equal(session.token_type, "Bearer");
  assert.ok(session.access_token.length > 0, "sign-up: access_token");
  // Body mode (the default): the refresh token is in the body.
  const refreshToken = session.refresh_token;
  assert.ok(refreshToken !== undefined && refreshToken.length > 0, "sign-up: refresh_token");
  assert.ok(session.expires_in > 0, "sign-up: expires_in");
  assert.equal(session.user.email, email, "sign-up: user.email");
  assert.equal(session.user.name, "Flow TS", "sign-up: user.name");
  assert.equal(session.user.profile_complete, false, "sign-up: user.profile_complete");
  assert.equal(session.user.profile, null, "sign-up: user.profile");
  const userId = session.user.id;

  // The same email again is a typed 409 problem.
  const again = await client.POST("/v1/auth/signup", { body: { email, password } });
  assertProblem(again, 409, "email_taken", "second sign-up");

  // 2. GET /v1/me: not onboarded yet.
  const me0 = await client.GET("/v1/me", { headers: bearer(session.access_token) });
  assert.equal(me0.response.status, 200, "me (before): HTTP status");
  assert.ok(me0.data, "me (before): a body");
  assert.equal(me0.data.id, userId, "me (before): id");
  assert.equal(me0.data.email, email, "me (before): email");
  assert.equal(me0.data.profile_complete, false, "me (before): profile_complete");
  assert.equal(me0.data.profile, null, "me (before): profile");

  // Without a token: a typed 401.
  const anon = await client.GET("/v1/me");
  assertProblem(anon, 401, "unauthorized", "me (no token)");

  const profile0 = await client.GET("/v1/me/profile", { headers: bearer(session.access_token) });
  assert.equal(profile0.response.status, 200, "profile (before): HTTP status");
  assert.ok(profile0.data, "profile (before): a body");
  assert.equal(profile0.data.profile, null, "profile (before): profile");
  assert.equal(profile0.data.profile_complete, false, "profile (before): profile_complete");

  // 3a. Enum values outside the spec come back as a typed problem+json 400
  // validation_failed naming the field. The generated types refuse them at
  // compile time, so one is forced through @ts-expect-error and one through
  // a cast.
  const badRole = await client.PUT("/v1/me/profile", {
    headers: bearer(session.access_token),
    body: {
      python_proficiency: "intermediate",
      // @ts-expect-error "wizard" is not a DeveloperRole: tsc rejects it in the client call.
      developer_role: "wizard",
    },
  });
  assertFieldError(
    assertProblem(badRole, 400, "validation_failed", "PUT profile (bad developer_role)"),
    "developer_role",
  );
  const expert = "expert" as string as PythonProficiency;
  const badLevel = await client.PUT("/v1/me/profile", {
    headers: bearer(session.access_token),
    body: { python_proficiency: expert, developer_role: "student" },
  });
  assertFieldError(
    assertProblem(badLevel, 400, "validation_failed", "PUT profile (bad python_proficiency)"),
    "python_proficiency",
  );

  // Nothing was written.
  const me1 = await client.GET("/v1/me", { headers: bearer(session.access_token) });
  assert.equal(me1.response.status, 200, "me (after bad PUT): HTTP status");
  assert.equal(me1.data?.profile_complete, false, "me (after bad PUT): profile_complete");

  // 3b. The real answers, with the generated enum types.
  const answers: ProfileRequest = {
    python_proficiency: "intermediate",
    developer_role: "robotics_engineer",
  };
  const put = await client.PUT("/v1/me/profile", {
    headers: bearer(session.access_token),
    body: answers,
  });
  assert.equal(put.response.status, 200, `PUT profile: HTTP status (${JSON.stringify(put.error)})`);
  assert.ok(put.data, "PUT profile: a body");
  assertNoStore(put.response, "PUT profile");
  assert.equal(put.data.profile.python_proficiency, "intermediate", "PUT profile: python_proficiency");
  assert.equal(put.data.profile.developer_role, "robotics_engineer", "PUT profile: developer_role");
  assert.ok(put.data.profile.completed_at, "PUT profile: completed_at is set");
  assert.ok(!Number.isNaN(Date.parse(put.data.profile.completed_at)), "PUT profile: completed_at is a date-time");
  assert.equal(put.data.token_type, "Bearer", "PUT profile: token_type");
  assert.ok(put.data.expires_in > 0, "PUT profile: expires_in");
  const putClaims = claims(put.data.access_token);
  const signupClaims = claims(session.access_token);
  assert.equal(putClaims["profile_complete"], true, "PUT profile: token claim profile_complete");
  assert.equal(putClaims["sid"], signupClaims["sid"], "PUT profile: token is for the same session");
  assert.equal(putClaims["sub"], userId, "PUT profile: token sub");
  const completedAt = put.data.profile.completed_at;

  // 4. GET /v1/me/profile with the token the PUT returned.
  const got = await client.GET("/v1/me/profile", { headers: bearer(put.data.access_token) });
  assert.equal(got.response.status, 200, "GET profile: HTTP status");
  assert.ok(got.data, "GET profile: a body");
  assertNoStore(got.response, "GET profile");
  assert.equal(got.data.profile_complete, true, "GET profile: profile_complete");
  assert.ok(got.data.profile, "GET profile: profile is set");
  assert.equal(got.data.profile.python_proficiency, "intermediate", "GET profile: python_proficiency");
  assert.equal(got.data.profile.developer_role, "robotics_engineer", "GET profile: developer_role");
  assert.equal(got.data.profile.completed_at, completedAt, "GET profile: completed_at");

  // 5. Refresh: a new pair, with the current claims.
  const refreshed = await client.POST("/v1/auth/refresh", {
    body: { refresh_token: refreshToken },
  });
  assert.equal(refreshed.response.status, 200, `refresh: HTTP status (${JSON.stringify(refreshed.error)})`);
  assert.ok(refreshed.data, "refresh: a body");
  assertNoStore(refreshed.response, "refresh");
  assert.ok(refreshed.data.refresh_token, "refresh: a new refresh token");
  assert.notEqual(refreshed.data.refresh_token, refreshToken, "refresh: the refresh token rotated");
  assert.equal(refreshed.data.user.id, userId, "refresh: user.id");
  assert.equal(refreshed.data.user.profile_complete, true, "refresh: user.profile_complete");
  const refreshedClaims = claims(refreshed.data.access_token);
  assert.equal(refreshedClaims["profile_complete"], true, "refresh: token claim profile_complete");
  assert.equal(refreshedClaims["sid"], signupClaims["sid"], "refresh: same session");

  // 6. GET /v1/me with the refreshed token: onboarded.
  const me2 = await client.GET("/v1/me", { headers: bearer(refreshed.data.access_token) });
  assert.equal(me2.response.status, 200, "me (after): HTTP status");
  assert.ok(me2.data, "me (after): a body");
  assert.equal(me2.data.id, userId, "me (after): id");
  assert.equal(me2.data.profile_complete, true, "me (after): profile_complete");
  assert.ok(me2.data.profile, "me (after): profile is set");
  assert.equal(me2.data.profile.python_proficiency, "intermediate", "me (after): python_proficiency");
  assert.equal(me2.data.profile.developer_role, "robotics_engineer", "me (after): developer_role");
  assert.equal(me2.data.profile.completed_at, completedAt, "me (after): completed_at");

  console.log(`flow (ts): ok, user ${userId}`);
}

main().catch((err: unknown) => {
  console.error("flow (ts): FAILED");
  console.error(err);
  process.exit(1);
});
