// End-to-end tests of the example site in a real Chromium (playwright-core, no
// browser download): Lanyard in cookie mode, the FastAPI example, the built
// site. Run by scripts/browser, which starts all of them and sets:
//   SITE_URL      the built site, e.g. http://localhost:41001
//   LANYARD_URL   Lanyard, same site as SITE_URL (http://localhost:PORT)
//   BACKEND_URL   the FastAPI example
//   ATTACKER_URL  a page on ANOTHER site (http://127.0.0.1:PORT) serving e2e/attacker/
//   LANYARD_ARTIFACTS  where screenshots, the cookie's attributes and the console log go
//   CHROMIUM      the browser (default /usr/bin/chromium)
// Every wait is on a condition (URL, element, attribute, request); none sleeps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run scripts/browser, which sets it)`);
  return v.replace(/\/+$/, '');
};
const SITE = env('SITE_URL');
const LANYARD = env('LANYARD_URL');
const BACKEND = env('BACKEND_URL');
const ATTACKER = env('ATTACKER_URL');
const ARTIFACTS = path.resolve(process.env.LANYARD_ARTIFACTS || 'artifacts/browser');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The flags the issue asks for (+ no QUIC: loopback only).
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const COOKIE = '__Host-lanyard-refresh';
const PASSWORD = 'correct horse battery staple';
// LANYARD_REFRESH_ABSOLUTE_TTL's default (docs/settings.md): the cookie's Max-Age at sign-up.
const ABSOLUTE_TTL_S = Number(process.env.LANYARD_REFRESH_ABSOLUTE_TTL_S || 720 * 3600);
// What the FastAPI example opens the chapter with, by python_proficiency (examples/fastapi/app.py).
const OPENINGS = {
  beginner: 'A quick refresher on variables, loops and functions, then on to the robot.',
  advanced: "The short version: the robot's API, its concurrency model and where to extend it.",
};

mkdirSync(ARTIFACTS, { recursive: true });
const consoleLog = path.join(ARTIFACTS, 'console.log');
writeFileSync(consoleLog, '');
const consoleLines = [];
let shots = 0;
const screenshots = [];

let browser;
const contexts = [];
const users = {};

function uniqueEmail(tag) {
  return `${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

async function newContext(label) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  context.setDefaultTimeout(20_000);
  context.setDefaultNavigationTimeout(20_000);
  context.label = label;
  const record = (line) => {
    consoleLines.push(line);
    appendFileSync(consoleLog, line + '\n');
  };
  context.on('page', (page) => {
    page.on('console', (m) => record(`[${label}] ${m.type()}: ${m.text()}  (${page.url()})`));
    page.on('pageerror', (e) => record(`[${label}] pageerror: ${e.message}  (${page.url()})`));
    page.on('requestfailed', (r) => record(`[${label}] requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  });
  contexts.push(context);
  return context;
}

async function shot(page, name) {
  shots += 1;
  const file = `${String(shots).padStart(2, '0')}-${name}.png`;
  await page.screenshot({ path: path.join(ARTIFACTS, file), fullPage: true });
  screenshots.push(file);
}

// Fails with the browser's console and a picture of every open page.
async function diagnose(name, err) {
  process.stderr.write(`\n--- ${name} failed: ${err && err.stack}\n--- browser console (last 60 lines; all in ${consoleLog})\n`);
  process.stderr.write(consoleLines.slice(-60).join('\n') + '\n');
  let i = 0;
  for (const context of contexts) {
    for (const page of context.pages()) {
      i += 1;
      const file = path.join(ARTIFACTS, `FAILED-${name.replace(/\W+/g, '_')}-${i}.png`);
      try {
        await page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
        process.stderr.write(`screenshot of ${page.url()} (${context.label}): ${file}\n`);
      } catch {}
    }
  }
}

function scenario(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (err) {
      await diagnose(name, err);
      throw err;
    }
  });
}

// The page is interactive (Root's effect ran) and the session is known.
async function ready(page) {
  await page.locator('html[data-hydrated="true"]').waitFor({ state: 'attached' });
  await page.locator('[data-testid="session-status"]:not([data-status="loading"])').first().waitFor({ state: 'attached' });
}

async function sessionStatus(page) {
  return page.getByTestId('session-status').first().getAttribute('data-status');
}

async function signUp(page, email, name) {
  await page.goto(`${SITE}/signup`);
  await ready(page);
  const form = page.getByTestId('signup-form');
  await form.locator('input[name="name"]').fill(name);
  await form.locator('input[name="email"]').fill(email);
  await form.locator('input[name="password"]').fill(PASSWORD);
  await form.getByTestId('submit').click();
}

async function onboard(page, level, role) {
  await page.getByTestId('onboarding-form').waitFor();
  await page.getByTestId('python-proficiency').selectOption(level);
  await page.getByTestId('developer-role').selectOption(role);
}

async function chapterOf(page) {
  const chapter = page.getByTestId('chapter');
  await chapter.waitFor();
  return {
    proficiency: await chapter.getAttribute('data-proficiency'),
    role: await chapter.getAttribute('data-role'),
    title: await page.getByTestId('chapter-title').innerText(),
    opening: await page.getByTestId('chapter-opening').innerText(),
    example: await page.getByTestId('chapter-example').innerText(),
    firstSteps: await page.getByTestId('chapter-first-steps').innerText(),
    level: await page.getByTestId('chapter-first-steps').getAttribute('data-level'),
  };
}

async function loads(page) {
  return Number(await page.getByTestId('chapter-loads').innerText());
}

async function waitForLoads(page, n) {
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid="chapter-loads"]')?.textContent) >= n,
    n,
  );
}

async function refreshCookie(context) {
  const all = await context.cookies();
  return all.find((c) => c.name === COOKIE) || null;
}

const isRefresh = (req) => req.method() === 'POST' && req.url() === `${LANYARD}/v1/auth/refresh`;

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  writeFileSync(path.join(ARTIFACTS, 'screenshots.txt'), screenshots.join('\n') + '\n');
});

describe('the Docusaurus example in Chromium', { concurrency: false }, () => {
  scenario('a. sign up, onboarding, a chapter personalised per proficiency', async () => {
    // Reader 1: beginner.
    const ctxA = await newContext('A');
    const page = await ctxA.newPage();
    users.one = { email: uniqueEmail('reader-one'), context: ctxA, page };
    await page.goto(`${SITE}/`);
    await ready(page);
    assert.equal(await sessionStatus(page), 'signed-out');
    await shot(page, 'home-signed-out');

    await signUp(page, users.one.email, 'Reader One');
    await page.waitForURL(`${SITE}/onboarding`);
    await ready(page);
    assert.equal(await sessionStatus(page), 'signed-in');
    assert.equal(await page.getByTestId('session-email').innerText(), users.one.email);
    await shot(page, 'signed-up-onboarding');

    // The chapter needs a profile: a fresh visit (session restored from the cookie) lands on onboarding.
    await page.goto(`${SITE}/chapter`);
    await page.waitForURL(`${SITE}/onboarding`);
    await page.getByTestId('onboarding-form').waitFor();
    // Exactly the enum values of openapi.yaml.
    const levels = await page.getByTestId('python-proficiency').locator('option:not([disabled])').evaluateAll((o) => o.map((x) => x.value));
    assert.deepEqual(levels, ['none', 'beginner', 'intermediate', 'advanced']);
    const roles = await page.getByTestId('developer-role').locator('option:not([disabled])').evaluateAll((o) => o.map((x) => x.value));
    assert.deepEqual(roles, [
      'student', 'hobbyist', 'software_engineer', 'data_scientist', 'ml_engineer',
      'robotics_engineer', 'researcher', 'educator', 'other',
    ]);
    await onboard(page, 'beginner', 'student');
    await shot(page, 'onboarding-beginner');
    await page.getByTestId('onboarding-form').getByTestId('submit').click();
    await page.waitForURL(`${SITE}/chapter`);
    const one = await chapterOf(page);
    assert.equal(one.proficiency, 'beginner');
    assert.equal(one.role, 'student');
    assert.equal(one.level, 'beginner');
    assert.equal(one.opening, OPENINGS.beginner);
    assert.equal(one.example, 'a line-following robot for a class project');
    await shot(page, 'chapter-beginner');

    // Reader 2, in a context of its own: the same email is refused first (the error shows the problem code).
    const ctxB = await newContext('B');
    const pageB = await ctxB.newPage();
    await signUp(pageB, users.one.email, 'Copycat');
    await pageB.getByTestId('error').waitFor();
    assert.equal(await pageB.getByTestId('error-code').innerText(), 'email_taken');
    assert.equal(pageB.url(), `${SITE}/signup`);
    await shot(pageB, 'signup-email-taken');

    users.two = { email: uniqueEmail('reader-two'), context: ctxB, page: pageB };
    await signUp(pageB, users.two.email, 'Reader Two');
    await pageB.waitForURL(`${SITE}/onboarding`);
    await onboard(pageB, 'advanced', 'ml_engineer');
    await pageB.getByTestId('onboarding-form').getByTestId('submit').click();
    await pageB.waitForURL(`${SITE}/chapter`);
    const two = await chapterOf(pageB);
    assert.equal(two.proficiency, 'advanced');
    assert.equal(two.role, 'ml_engineer');
    assert.equal(two.level, 'advanced');
    assert.equal(two.opening, OPENINGS.advanced);
    await shot(pageB, 'chapter-advanced');

    // Different readers, different chapters.
    assert.notEqual(one.opening, two.opening);
    assert.notEqual(one.firstSteps, two.firstSteps);
    assert.notEqual(one.example, two.example);
    await ctxB.close();
  });

  scenario('b. reload keeps the session; the refresh cookie is HttpOnly, Secure, Strict, host-only', async () => {
    const { page, context } = users.one;
    const refreshes = [];
    const onRequest = (r) => isRefresh(r) && refreshes.push(r);
    context.on('request', onRequest);
    await page.reload();
    await ready(page);
    const chapter = await chapterOf(page);
    assert.equal(chapter.proficiency, 'beginner');
    assert.equal(await sessionStatus(page), 'signed-in');
    context.off('request', onRequest);
    // The reload restored the session with one cookie refresh (the access token lived in memory only).
    assert.equal(refreshes.length, 1, 'one refresh restores the session after a reload');
    const sent = await refreshes[0].allHeaders();
    assert.equal(sent['lanyard-token-delivery'], 'cookie');
    assert.equal(sent.origin, SITE);
    assert.match(sent.cookie || '', new RegExp(`(^|; )${COOKIE}=`), 'the refresh request carries the cookie');
    const answer = await refreshes[0].response();
    assert.equal(answer.status(), 200);
    assert.equal((await answer.json()).refresh_token, undefined, 'no refresh_token in the body in cookie mode');
    await shot(page, 'reloaded-still-signed-in');

    // Page script cannot read it, although the cookie jar of this host has it.
    const fromScript = await page.evaluate(() => document.cookie);
    assert.ok(!fromScript.includes(COOKIE), `document.cookie shows the refresh cookie: ${fromScript}`);
    const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.ok(!/refresh/i.test(storage), `web storage holds a refresh token: ${storage}`);

    const cookie = await refreshCookie(context);
    assert.ok(cookie, 'the browser holds the refresh cookie');
    const now = Date.now() / 1000;
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/');
    // Host-only: the domain is the host itself, not ".localhost" (no Domain attribute).
    assert.equal(cookie.domain, new URL(LANYARD).hostname);
    assert.ok(!cookie.domain.startsWith('.'));
    // Max-Age = the session's remaining absolute lifetime (30 days by default), set a moment ago.
    assert.ok(cookie.expires > 0, 'a persistent cookie (Max-Age), not a session cookie');
    assert.ok(Math.abs(cookie.expires - (now + ABSOLUTE_TTL_S)) < 600, `expires ${cookie.expires} vs now+${ABSOLUTE_TTL_S} = ${now + ABSOLUTE_TTL_S}`);

    // Chromium's own view (CDP), as reported, for the record.
    const cdp = await context.newCDPSession(page);
    const { cookies: raw } = await cdp.send('Network.getCookies', { urls: [LANYARD, SITE] });
    await cdp.detach();
    const rawCookie = raw.find((c) => c.name === COOKIE);
    assert.ok(rawCookie, 'CDP reports the cookie');
    const redact = (c) => ({ ...c, value: `<${c.value.length} characters, not recorded>` });
    const record = {
      recorded_at: new Date().toISOString(),
      lanyard: LANYARD,
      site: SITE,
      expected_lifetime_seconds: ABSOLUTE_TTL_S,
      expires_in_seconds_from_now: Math.round(cookie.expires - now),
      document_cookie_contains_it: fromScript.includes(COOKIE),
      playwright: redact(cookie),
      chromium_cdp: redact(rawCookie),
    };
    writeFileSync(path.join(ARTIFACTS, 'refresh-cookie.json'), JSON.stringify(record, null, 2) + '\n');
  });

  // Opens the foreign page at `origin` in the reader's browser (same context,
  // same cookie jar) and lets it try its three refreshes. Returns what the page
  // saw and, from Chromium's own network log (CDP), every POST it sent to
  // /v1/auth/refresh: the answer's status, whether the refresh cookie went with
  // it (and why not), and whether a cookie was set in return.
  async function attack(context, origin, name) {
    const url = `${LANYARD}/v1/auth/refresh`;
    const evil = await context.newPage();
    const cdp = await context.newCDPSession(evil);
    const posts = new Map();
    let changed = () => {};
    const post = (id) => {
      queueMicrotask(() => changed());
      return posts.get(id);
    };
    // ExtraInfo events may come before or after the request's own event: keep them by id.
    const extra = new Map();
    const applyExtra = (id) => {
      const p = posts.get(id);
      const e = extra.get(id);
      if (!p || !e) return;
      const header = (name) => Object.entries(e.headers).find(([k]) => k.toLowerCase() === name)?.[1] || null;
      p.cookie_sent = (header('cookie') || '').includes(`${COOKIE}=`);
      p.origin = header('origin');
      const assoc = (e.associatedCookies || []).find((c) => c.cookie.name === COOKIE);
      p.cookie_blocked_reasons = assoc ? assoc.blockedReasons : null;
    };
    cdp.on('Network.requestWillBeSent', (e) => {
      if (e.request.url === url && e.request.method === 'POST') {
        posts.set(e.requestId, { delivery_header: e.request.headers['Lanyard-Token-Delivery'] || null, status: null });
        applyExtra(e.requestId);
        changed();
      }
    });
    cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
      extra.set(e.requestId, e);
      applyExtra(e.requestId);
      changed();
    });
    cdp.on('Network.responseReceived', (e) => {
      const p = post(e.requestId);
      if (p) p.status = e.response.status;
    });
    cdp.on('Network.responseReceivedExtraInfo', (e) => {
      const p = post(e.requestId);
      if (p) p.set_cookie = Object.keys(e.headers).some((k) => k.toLowerCase() === 'set-cookie');
    });
    cdp.on('Network.loadingFailed', (e) => {
      const p = post(e.requestId);
      if (p) {
        p.failed = e.errorText;
        if (e.corsErrorStatus) p.cors_error = e.corsErrorStatus.corsError;
      }
    });
    await cdp.send('Network.enable');
    await evil.goto(`${origin}/?lanyard=${encodeURIComponent(LANYARD)}`);
    await evil.locator('#done').waitFor();
    const page = JSON.parse(await evil.locator('#result').innerText());
    await shot(evil, name);
    // Wait until Chromium has reported every POST's outcome and the headers it sent.
    const complete = () =>
      posts.size >= 3 &&
      [...posts.values()].every((p) => (p.status === null && p.failed) || (p.status !== null && 'cookie_sent' in p));
    if (!complete()) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`incomplete network report: ${JSON.stringify([...posts.values()])}`)), 10_000);
        changed = () => complete() && (clearTimeout(timer), resolve());
      });
    }
    const sent = [...posts.values()];
    await cdp.detach();
    await evil.close();

    // 1. Cookie mode from a foreign origin: the CORS preflight fails, so the POST
    //    itself fails in the browser without an answer (Lanyard never sees it).
    assert.equal(page.cookie_mode.error, 'TypeError', JSON.stringify(page.cookie_mode));
    const cookieMode = sent.filter((p) => p.delivery_header);
    assert.equal(cookieMode.length, 1, `cookie-mode POSTs: ${JSON.stringify(sent)}`);
    assert.equal(cookieMode[0].status, null, 'the cookie-mode POST got an answer');
    assert.ok(cookieMode[0].failed, 'the cookie-mode POST did not fail');
    // 2, 3. Simple (no-preflight) POSTs do go out; the page cannot read the answers
    //    (opaque), and Lanyard refuses them without setting a cookie.
    assert.equal(page.simple_no_cors.type, 'opaque', JSON.stringify(page.simple_no_cors));
    assert.equal(page.simple_no_body.type, 'opaque', JSON.stringify(page.simple_no_body));
    const simple = sent.filter((p) => !p.delivery_header);
    assert.equal(simple.length, 2, `simple POSTs: ${JSON.stringify(sent)}`);
    for (const p of simple) {
      assert.ok(p.status >= 400 && p.status < 500, `a foreign refresh was answered ${p.status}`);
      // (Chromium does not always report an aborted opaque answer's raw headers; the cookie's value is compared below.)
      assert.notEqual(p.set_cookie, true, 'a cookie was set for a foreign request');
      assert.equal(typeof p.cookie_sent, 'boolean', 'Chromium reported no request headers');
    }
    return { page, sent };
  }

  scenario('e. a cross-site page cannot refresh with the cookie', async () => {
    const { page: victim, context } = users.one;
    const before = await refreshCookie(context);
    assert.ok(before);

    // Another site (127.0.0.1 is not localhost): SameSite=Strict keeps the cookie home.
    const crossSite = await attack(context, ATTACKER, 'cross-site-attempt');
    // The same site but an origin Lanyard does not allow (think: a sibling subdomain):
    // the browser does send the cookie with simple requests, so Lanyard itself must
    // refuse them: no Lanyard-Token-Delivery header, no allowed Origin → 403 csrf_rejected.
    const sameSite = await attack(context, `http://localhost:${new URL(ATTACKER).port}`, 'same-site-foreign-origin-attempt');
    writeFileSync(
      path.join(ARTIFACTS, 'foreign-refresh-attempts.json'),
      JSON.stringify({ cross_site: crossSite, same_site_foreign_origin: sameSite }, null, 2) + '\n',
    );
    for (const p of crossSite.sent.filter((p) => !p.delivery_header)) {
      assert.equal(p.cookie_sent, false, 'a cross-site request carried the refresh cookie');
      // Chromium says why: (Schemeful)SameSiteStrict (and its third-party cookie setting).
      assert.ok((p.cookie_blocked_reasons || []).some((r) => /SameSiteStrict$/.test(r)), JSON.stringify(p));
    }
    const sameSiteSimple = sameSite.sent.filter((p) => !p.delivery_header);
    assert.ok(sameSiteSimple.every((p) => p.cookie_sent), `the same-site simple POSTs should carry the cookie: ${JSON.stringify(sameSiteSimple)}`);
    // The bodiless one gets as far as the cookie check: 403 (csrf_rejected). (The other is refused earlier, 415.)
    assert.ok(sameSiteSimple.some((p) => p.status === 403), JSON.stringify(sameSiteSimple));

    // The session is untouched: same cookie value, and the reader's tab still works (after a reload too).
    const afterCookie = await refreshCookie(context);
    assert.ok(afterCookie);
    assert.equal(afterCookie.value, before.value, 'the refresh cookie changed');
    const n = await loads(victim);
    await victim.getByTestId('chapter-reload').click();
    await waitForLoads(victim, n + 1);
    await victim.reload();
    const chapter = await chapterOf(victim);
    assert.equal(chapter.proficiency, 'beginner');
    await shot(victim, 'victim-still-signed-in');
  });

  let ctxC;
  let tab1;
  let tab2;

  scenario('c. two tabs whose access tokens expire at once: one refresh, both stay signed in', async () => {
    ctxC = await newContext('C');
    // A controllable clock in every page of this context (Date, timers): the tokens
    // expire for the client when the clock jumps, without waiting 15 minutes.
    await ctxC.clock.install();
    tab1 = await ctxC.newPage();
    await tab1.goto(`${SITE}/signin`);
    await ready(tab1);
    // A wrong password first: the error shows Lanyard's problem code.
    const form = tab1.getByTestId('signin-form');
    await form.locator('input[name="email"]').fill(users.one.email);
    await form.locator('input[name="password"]').fill('not the password');
    await form.getByTestId('submit').click();
    await tab1.getByTestId('error').waitFor();
    assert.equal(await tab1.getByTestId('error-code').innerText(), 'invalid_credentials');
    await shot(tab1, 'signin-invalid-credentials');

    const login = tab1.waitForResponse((r) => r.url() === `${LANYARD}/v1/auth/login` && r.request().method() === 'POST');
    await form.locator('input[name="password"]').fill(PASSWORD);
    await form.getByTestId('submit').click();
    const loginBody = await (await login).json();
    assert.equal(loginBody.refresh_token, undefined);
    const expiresIn = loginBody.expires_in;
    assert.ok(expiresIn > 0);
    await tab1.waitForURL(`${SITE}/chapter`);
    await chapterOf(tab1);

    tab2 = await ctxC.newPage();
    await tab2.goto(`${SITE}/chapter`);
    await chapterOf(tab2);
    await shot(tab1, 'two-tabs-tab1');
    await shot(tab2, 'two-tabs-tab2');

    // From here on: every refresh, and the token each backend call carries, per tab.
    const refreshes = [];
    const bearer = new Map([[tab1, []], [tab2, []]]);
    const onRequest = (r) => {
      if (isRefresh(r)) refreshes.push(r);
      if (r.url() === `${BACKEND}/chapters/personalised` && r.method() === 'GET') {
        const list = bearer.get(r.frame().page());
        list?.push(r.headers().authorization);
      }
    };
    ctxC.on('request', onRequest);
    const [n1, n2] = [await loads(tab1), await loads(tab2)];
    // Check what both tabs use now (before the jump).
    await tab1.getByTestId('chapter-reload').click();
    await waitForLoads(tab1, n1 + 1);
    await tab2.getByTestId('chapter-reload').click();
    await waitForLoads(tab2, n2 + 1);
    assert.equal(refreshes.length, 0, 'no refresh while the tokens are fresh');
    const old1 = bearer.get(tab1).at(-1);
    const old2 = bearer.get(tab2).at(-1);
    assert.ok(old1 && old2);

    // Both tabs' access tokens expire at the same moment.
    await ctxC.clock.fastForward((expiresIn + 60) * 1000);
    // Both tabs call the backend at once.
    await Promise.all([tab1.getByTestId('chapter-reload').click(), tab2.getByTestId('chapter-reload').click()]);
    await Promise.all([waitForLoads(tab1, n1 + 2), waitForLoads(tab2, n2 + 2)]);
    await shot(tab1, 'after-expiry-tab1');
    await shot(tab2, 'after-expiry-tab2');
    const new1 = bearer.get(tab1).at(-1);
    const new2 = bearer.get(tab2).at(-1);
    ctxC.off('request', onRequest);

    assert.equal(refreshes.length, 1, `exactly one POST /v1/auth/refresh for two tabs, saw ${refreshes.length}`);
    assert.equal((await refreshes[0].response()).status(), 200);
    // Both tabs use the one new access token that refresh returned.
    assert.notEqual(new1, old1, 'tab 1 kept its expired token');
    assert.notEqual(new2, old2, 'tab 2 kept its expired token');
    assert.equal(new1, new2, 'the two tabs use different new tokens: two refreshes?');
    assert.equal(await sessionStatus(tab1), 'signed-in');
    assert.equal(await sessionStatus(tab2), 'signed-in');
  });

  scenario('d. signing out in one tab signs out the other', async () => {
    assert.ok(ctxC && tab1 && tab2, 'needs the two tabs of scenario c');
    // A mark that a reload would wipe out.
    await tab2.evaluate(() => {
      window.__notReloaded = true;
    });
    const logout = tab1.waitForResponse((r) => r.url() === `${LANYARD}/v1/auth/logout` && r.request().method() === 'POST');
    await tab1.getByTestId('signout').click();
    assert.equal((await logout).status(), 204);
    await tab1.waitForURL(`${SITE}/signin`);
    await tab1.locator('[data-testid="session-status"][data-status="signed-out"]').waitFor();
    // The other tab follows by itself: signed-out navbar, and its protected page sends it to /signin.
    await tab2.locator('[data-testid="session-status"][data-status="signed-out"]').waitFor();
    await tab2.waitForURL(`${SITE}/signin`);
    assert.equal(await tab2.evaluate(() => window.__notReloaded), true, 'tab 2 was reloaded');
    await shot(tab1, 'signed-out-tab1');
    await shot(tab2, 'signed-out-tab2');
    assert.equal(await refreshCookie(ctxC), null, 'logout clears the refresh cookie');
    // And stays out: a fresh visit to the chapter goes to sign-in.
    await tab2.goto(`${SITE}/chapter`);
    await tab2.waitForURL(`${SITE}/signin`);
  });
});
