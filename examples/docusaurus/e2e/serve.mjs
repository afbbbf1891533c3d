// A tiny static server for the e2e run (node e2e/serve.mjs):
//   SITE_ROOT (default build/) on 127.0.0.1:SITE_PORT, the way a static host
//   serves a Docusaurus build: /chapter -> chapter.html, /x/ -> x/index.html,
//   anything else -> 404.html with status 404;
//   e2e/attacker/ on 127.0.0.1:ATTACKER_PORT (when set): the cross-site page.
// GET and HEAD only; never lists directories or leaves its root.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml',
  '.woff2': 'font/woff2',
};

async function isFile(p) {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

function serve(root, port, name) {
  root = path.resolve(root);
  const server = createServer(async (req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      const url = new URL(req.url, 'http://x');
      const rel = path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.(\/|\\|$))+/, '');
      const base = path.join(root, rel);
      if (base !== root && !base.startsWith(root + path.sep)) {
        res.writeHead(403).end();
        return;
      }
      const candidates = url.pathname.endsWith('/')
        ? [path.join(base, 'index.html')]
        : [base, `${base}.html`, path.join(base, 'index.html')];
      let file = null;
      for (const c of candidates) {
        if (await isFile(c)) {
          file = c;
          break;
        }
      }
      let status = 200;
      if (!file) {
        status = 404;
        file = path.join(root, '404.html');
        if (!(await isFile(file))) {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
          return;
        }
      }
      const body = await readFile(file);
      res.writeHead(status, {
        'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
        'Content-Length': body.length,
        'Cache-Control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(err));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      console.log(`${name} http://127.0.0.1:${server.address().port} -> ${root}`);
      resolve(server);
    });
  });
}

const sitePort = Number(process.env.SITE_PORT);
if (!sitePort) {
  console.error('SITE_PORT is required');
  process.exit(2);
}
await serve(process.env.SITE_ROOT || path.join(here, '..', 'build'), sitePort, 'site');
if (process.env.ATTACKER_PORT) {
  await serve(path.join(here, 'attacker'), Number(process.env.ATTACKER_PORT), 'attacker');
}
console.log('ready');
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
