// The browser example served by Thumper itself: `/` is the feed page, `/examples/browser/<file>` the
// files next to it, `/vendor/*` the two client libraries it loads (stompjs 2.3.3 and sockjs-client,
// from node_modules). Everything is read once into memory at start; a request can only ever name a
// file of that snapshot, so no URL reaches anything else on disk.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { HttpMount } from './http-server.js';

export interface ExampleMountOptions {
  /**
   * The folder holding index.html and app.js. Default: `client-examples/browser`, found by walking
   * up from this file (so it works from `broker/src/` and from `dist/`). An explicit folder that
   * does not exist is an error; a missing default only turns the page off (404), with a warning.
   */
  readonly rootDir?: string | undefined;
  readonly log?: Logger | undefined;
}

interface StaticFile {
  readonly body: Buffer;
  readonly contentType: string;
}

const EXAMPLE_PREFIX = '/examples/browser/';
const EXAMPLE_DIR = join('client-examples', 'browser');
/** Far more than the few small files the example has; a guard against pointing rootDir at a tree. */
const MAX_FILE_BYTES = 1024 * 1024;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page only talks to its own origin; 'self' in connect-src covers same-origin ws:/wss: too
 * (CSP Level 3). Inline styles are allowed for the page's one <style> block; scripts are not.
 */
const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export function exampleMount(options: ExampleMountOptions = {}): HttpMount {
  const files = new Map<string, StaticFile>();
  for (const [name, file] of readExampleDir(options)) files.set(`${EXAMPLE_PREFIX}${name}`, file);
  const index = files.get(`${EXAMPLE_PREFIX}index.html`);
  if (index) {
    files.set('/', index);
    files.set(EXAMPLE_PREFIX, index);
  }
  const vendor = vendorFiles();
  for (const [path, file] of vendor) files.set(path, file);

  return {
    name: 'example-page',
    matches: (pathname) => pathname === '/' || pathname === EXAMPLE_PREFIX.slice(0, -1) || pathname.startsWith(EXAMPLE_PREFIX) || pathname.startsWith('/vendor/'),
    handleRequest(req: IncomingMessage, res: ServerResponse) {
      const pathname = (req.url ?? '/').split('?')[0] ?? '/';
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        sendText(res, 405, 'Method Not Allowed\n');
        return;
      }
      if (pathname === EXAMPLE_PREFIX.slice(0, -1)) {
        res.writeHead(301, { Location: EXAMPLE_PREFIX, 'Content-Length': 0 });
        res.end();
        return;
      }
      const file = files.get(pathname);
      if (!file) {
        sendText(res, 404, 'Not Found\n');
        return;
      }
      res.writeHead(200, {
        'Content-Type': file.contentType,
        'Content-Length': file.body.length,
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
        ...(file.contentType.startsWith('text/html') ? { 'Content-Security-Policy': PAGE_CSP, 'Referrer-Policy': 'no-referrer' } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : file.body);
    },
  };
}

/** The regular files directly in the example folder, by name (no subfolders, no dotfiles). */
function readExampleDir(options: ExampleMountOptions): Map<string, StaticFile> {
  const dir = options.rootDir ?? findDefaultDir();
  const out = new Map<string, StaticFile>();
  if (dir === undefined) {
    options.log?.warn({ looked: EXAMPLE_DIR }, 'browser example not found: / and /examples/browser/ answer 404');
    return out;
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`example page: ${dir} is not a directory`);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (statSync(path).size > MAX_FILE_BYTES) continue;
    out.set(entry.name, { body: readFileSync(path), contentType: contentTypeOf(entry.name) });
  }
  return out;
}

function findDefaultDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  // Bounded: a path has finitely many parents; stop at the filesystem root.
  for (let i = 0; i < 64; i++) {
    const candidate = join(dir, EXAMPLE_DIR);
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
  return undefined;
}

/** Resolved as a package import would be, so node_modules is found from src/ and dist/ alike. */
function vendorFiles(): Map<string, StaticFile> {
  const require = createRequire(import.meta.url);
  const js = CONTENT_TYPES['.js'] ?? 'text/javascript';
  return new Map([
    ['/vendor/stomp.js', { body: readFileSync(require.resolve('stompjs/lib/stomp.js')), contentType: js }],
    ['/vendor/sockjs.min.js', { body: readFileSync(require.resolve('sockjs-client/dist/sockjs.min.js')), contentType: js }],
  ]);
}

export function contentTypeOf(name: string): string {
  return CONTENT_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'X-Content-Type-Options': 'nosniff' });
  res.end(text);
}
