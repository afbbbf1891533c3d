#!/usr/bin/env node
// Packs @lanyard/client with `npm pack`, installs the tarball into a fresh temporary project and checks
// that both entry points import in Node and that their types resolve for a TypeScript consumer.
// Usage: npm run check:pack   (no network needed: the package has no dependencies)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'lanyard-client-pack-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let failed = 0;
let passed = 0;

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

function check(name, fn) {
  try {
    fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(error?.stack ?? error).split('\n').join('\n  ')}`);
  }
}

try {
  // 1. pack (the prepack script builds dist/)
  const out = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', tmp], pkgDir));
  const info = out[0];
  const tarball = join(tmp, info.filename);
  const files = info.files.map((f) => f.path).sort();

  check('tarball holds dist, package.json and README only', () => {
    for (const f of files) {
      if (!(f.startsWith('dist/') || f === 'package.json' || f === 'README.md')) throw new Error(`unexpected file ${f}`);
    }
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/react.js', 'dist/react.d.ts', 'README.md']) {
      if (!files.includes(f)) throw new Error(`missing ${f}`);
    }
  });

  // 2. a fresh consumer project
  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2));
  run(npm, ['install', '--no-audit', '--no-fund', '--no-package-lock', '--ignore-scripts', tarball], app);
  const installed = JSON.parse(readFileSync(join(app, 'node_modules/@lanyard/client/package.json'), 'utf8'));

  check('installed package has no runtime dependencies and an optional react peer', () => {
    if (installed.dependencies && Object.keys(installed.dependencies).length) throw new Error('has dependencies');
    if (installed.peerDependenciesMeta?.react?.optional !== true) throw new Error('react peer is not optional');
    if (existsSync(join(app, 'node_modules/react'))) throw new Error('react was installed although optional');
  });

  check('the main entry imports in Node (no react installed)', () => {
    const script = `
      import { createLanyard, LanyardError, attachAxios, DEVELOPER_ROLES } from '@lanyard/client';
      const l = createLanyard({ url: 'https://auth.example.com' });
      if (l.session !== null) throw new Error('session');
      if (typeof attachAxios !== 'function' || !(new LanyardError(400, 'x') instanceof Error)) throw new Error('exports');
      if (!DEVELOPER_ROLES.includes('robotics_engineer')) throw new Error('roles');
      const r = import.meta.resolve('@lanyard/client/react');
      if (!r.endsWith('/dist/react.js')) throw new Error('react entry resolves to ' + r);
      console.log('imported');`;
    const printed = run(process.execPath, ['--input-type=module', '-e', script], app);
    if (!printed.includes('imported')) throw new Error(printed);
  });

  // make react available (as a consumer app would have it) to run the React entry and type-check
  const nm = join(app, 'node_modules');
  for (const dep of ['react', '@types/react']) {
    const target = join(pkgDir, 'node_modules', dep);
    mkdirSync(dirname(join(nm, dep)), { recursive: true });
    symlinkSync(target, join(nm, dep), 'dir');
  }

  check('the react entry imports in Node with react present', () => {
    const script = `
      import * as r from '@lanyard/client/react';
      for (const k of ['LanyardProvider', 'useSession', 'useLanyard', 'RequireAuth', 'RequireProfile'])
        if (typeof r[k] !== 'function') throw new Error('missing ' + k);
      console.log('imported');`;
    const printed = run(process.execPath, ['--input-type=module', '-e', script], app);
    if (!printed.includes('imported')) throw new Error(printed);
  });

  const consumer = `
    import { createLanyard, LanyardError, attachAxios, type Session, type Lanyard, type LanyardResponse } from '@lanyard/client';
    import { LanyardProvider, useSession, useLanyard, RequireAuth, RequireProfile, type SessionState } from '@lanyard/client/react';
    const lanyard: Lanyard = createLanyard({ url: 'https://auth.example.com', tokenDelivery: 'cookie', refreshLeeway: 30 });
    export async function demo(): Promise<string | null> {
      const s: Session = await lanyard.signIn({ email: 'a@example.com', password: 'x' });
      const r: LanyardResponse = await lanyard.fetch('https://api.example.com/x');
      const code: string | null = r.code;
      await lanyard.updateProfile({ python_proficiency: 'beginner', developer_role: 'student' });
      const e = new LanyardError(403, 'profile_incomplete');
      return s.user.email + code + e.code + String(attachAxios.length);
    }
    export const pieces = [LanyardProvider, useSession, useLanyard, RequireAuth, RequireProfile];
    export type S = SessionState['status'];
  `;
  for (const moduleResolution of ['nodenext', 'bundler']) {
    check(`types resolve for both entries (moduleResolution ${moduleResolution})`, () => {
      const dir = join(app, `ts-${moduleResolution}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'consumer.ts'), consumer);
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: moduleResolution === 'bundler' ? 'ESNext' : 'NodeNext',
            moduleResolution,
            lib: ['ES2022', 'DOM'],
            strict: true,
            noEmit: true,
            types: [],
          },
          files: ['consumer.ts'],
        }),
      );
      run(process.execPath, [join(pkgDir, 'node_modules/typescript/bin/tsc'), '-p', dir], dir);
    });
  }
} catch (error) {
  failed++;
  console.log(`not ok - pack/install\n  ${String(error?.stack ?? error)}`);
} finally {
  if (!process.env.KEEP_PACK_DIR) rmSync(tmp, { recursive: true, force: true });
  else console.log(`kept ${tmp}`);
}

console.log(`pack: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
