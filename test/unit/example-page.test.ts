// The example-page mount behind a real node:http server on loopback: what it serves, with which
// headers, what it refuses (methods, unknown files), that no request path escapes the example folder,
// and that the files are read once.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeServer, createHttpServer, listen } from '../../broker/src/server/http-server.js';
import type { HttpMount } from '../../broker/src/server/http-server.js';
import { contentTypeOf, exampleMount } from '../../broker/src/server/example-page.js';

const require = createRequire(import.meta.url);
const SHIPPED_DIR = fileURLToPath(new URL('../../client-examples/browser/', import.meta.url));

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A raw request: `path` goes on the wire exactly as given (fetch would normalise `..` away). */
function get(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function serve(mount: HttpMount): Promise<{ server: Server; port: number }> {
  const server = createHttpServer({
    wsPath: '/ws',
    isReady: () => true,
    onUpgrade: (_req, socket) => socket.destroy(),
    mounts: [mount],
  });
  const { port } = await listen(server, '127.0.0.1', 0);
  return { server, port };
}

describe('example page mount over a fixture folder', () => {
  let root: string;
  let dir: string;
  let server: Server;
  let port: number;
  const INDEX = '<!doctype html><title>fixture</title><script src="/examples/browser/app.js"></script>';
  const APP = 'console.log("app");';
  const SECRET = 'top-secret-outside-the-example-folder';

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'thumper-example-'));
    dir = join(root, 'browser');
    mkdirSync(dir);
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'index.html'), INDEX);
    writeFileSync(join(dir, 'app.js'), APP);
    writeFileSync(join(dir, 'README.md'), '# readme');
    writeFileSync(join(dir, 'blob.bin'), Buffer.from([0, 1, 2]));
    writeFileSync(join(dir, '.env'), SECRET);
    writeFileSync(join(dir, 'sub', 'nested.js'), SECRET);
    writeFileSync(join(root, 'secret.txt'), SECRET);
    ({ server, port } = await serve(exampleMount({ rootDir: dir })));
  });

  after(async () => {
    await closeServer(server);
    rmSync(root, { recursive: true, force: true });
  });

  test('GET / is index.html, as HTML, revalidated on every use and never sniffed', async () => {
    const r = await get(port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), INDEX);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(INDEX)));
    assert.match(String(r.headers['content-security-policy']), /script-src 'self'/);
  });

  test('a query string does not change what / serves', async () => {
    const r = await get(port, '/?user=user_x&transport=xhr-polling');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), INDEX);
  });

  test('/examples/browser/<file> serves the folder\'s files with their content types', async () => {
    const app = await get(port, '/examples/browser/app.js');
    assert.equal(app.status, 200);
    assert.equal(app.body.toString(), APP);
    assert.equal(app.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(app.headers['x-content-type-options'], 'nosniff');
    assert.equal(app.headers['cache-control'], 'no-cache');
    assert.equal(app.headers['content-security-policy'], undefined);
    const readme = await get(port, '/examples/browser/README.md');
    assert.equal(readme.headers['content-type'], 'text/markdown; charset=utf-8');
    const blob = await get(port, '/examples/browser/blob.bin');
    assert.equal(blob.headers['content-type'], 'application/octet-stream');
    assert.deepEqual([...blob.body], [0, 1, 2]);
    const index = await get(port, '/examples/browser/');
    assert.equal(index.body.toString(), INDEX);
  });

  test('/examples/browser without the slash redirects to the folder', async () => {
    const r = await get(port, '/examples/browser');
    assert.equal(r.status, 301);
    assert.equal(r.headers['location'], '/examples/browser/');
  });

  test('/vendor/ serves stompjs 2.3.3 and sockjs-client exactly as installed', async () => {
    const stomp = await get(port, '/vendor/stomp.js');
    assert.equal(stomp.status, 200);
    assert.equal(stomp.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.deepEqual(stomp.body, readFileSync(require.resolve('stompjs/lib/stomp.js')));
    assert.match(stomp.body.toString(), /Stomp\.over|over: function/);
    const sockjs = await get(port, '/vendor/sockjs.min.js');
    assert.equal(sockjs.status, 200);
    assert.deepEqual(sockjs.body, readFileSync(require.resolve('sockjs-client/dist/sockjs.min.js')));
    assert.equal(sockjs.headers['x-content-type-options'], 'nosniff');
  });

  test('HEAD answers the headers of GET without a body', async () => {
    const r = await get(port, '/examples/browser/app.js', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(APP)));
    assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(r.body.length, 0);
  });

  test('other methods are 405 with Allow: GET, HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      for (const path of ['/', '/examples/browser/app.js', '/vendor/stomp.js']) {
        const r = await get(port, path, method);
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.headers['allow'], 'GET, HEAD');
      }
    }
  });

  test('unknown files are 404', async () => {
    for (const path of ['/examples/browser/nope.js', '/vendor/nope.js', '/vendor/', '/vendor/stomp.min.js', '/examples/browser/index.htm']) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
    }
  });

  test('no path reaches a file outside the folder, a subfolder or a dotfile', async () => {
    const attempts = [
      '/examples/browser/../secret.txt',
      '/examples/browser/%2e%2e/secret.txt',
      '/examples/browser/..%2fsecret.txt',
      '/examples/browser/%2e%2e%2fsecret.txt',
      '/examples/browser/..%5csecret.txt',
      '/examples/browser/..\\secret.txt',
      '/examples/browser//secret.txt',
      `/examples/browser/${root}/secret.txt`,
      `/examples/browser/${encodeURIComponent(join(root, 'secret.txt'))}`,
      '/examples/browser/sub/nested.js',
      '/examples/browser/sub%2fnested.js',
      '/examples/browser/.env',
      '/examples/browser/./app.js/../../secret.txt',
      '/vendor/../examples/browser/../secret.txt',
      '/vendor/..%2f..%2fpackage.json',
      '/examples/browser/app.js%00.html',
    ];
    for (const path of attempts) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
      assert.ok(!r.body.toString().includes(SECRET), `${path} leaked the secret`);
    }
  });

  test('files are read once: a change on disk after start is not served', async () => {
    writeFileSync(join(dir, 'app.js'), 'changed on disk');
    writeFileSync(join(dir, 'late.js'), 'added on disk');
    const r = await get(port, '/examples/browser/app.js');
    assert.equal(r.body.toString(), APP);
    assert.equal((await get(port, '/examples/browser/late.js')).status, 404);
  });

  test('the mount claims only its own paths', () => {
    const mount = exampleMount({ rootDir: dir });
    for (const path of ['/', '/examples/browser', '/examples/browser/app.js', '/vendor/stomp.js']) assert.equal(mount.matches(path), true, path);
    for (const path of ['/ws', '/stomp', '/stomp/info', '/healthz', '/readyz', '/metrics', '/examples', '/examples/other/x.js', '/index.html']) {
      assert.equal(mount.matches(path), false, path);
    }
  });
});

describe('example page mount with the shipped example', () => {
  let server: Server;
  let port: number;

  before(async () => {
    ({ server, port } = await serve(exampleMount()));
  });

  after(async () => {
    await closeServer(server);
  });

  test('without rootDir it finds client-examples/browser', async () => {
    const r = await get(port, '/');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, readFileSync(join(SHIPPED_DIR, 'index.html')));
    const app = await get(port, '/examples/browser/app.js');
    assert.deepEqual(app.body, readFileSync(join(SHIPPED_DIR, 'app.js')));
  });

  test('every script the shipped page loads is served', async () => {
    const html = (await get(port, '/')).body.toString();
    const sources = [...html.matchAll(/<script src="([^"]+)"><\/script>/g)].map((m) => m[1] ?? '');
    assert.deepEqual(sources, ['/vendor/sockjs.min.js', '/vendor/stomp.js', '/examples/browser/app.js']);
    for (const src of sources) {
      const r = await get(port, src);
      assert.equal(r.status, 200, src);
      assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8', src);
    }
  });
});

describe('example page mount configuration', () => {
  test('an explicit rootDir that does not exist is an error', () => {
    assert.throws(() => exampleMount({ rootDir: join(tmpdir(), 'thumper-no-such-example-dir') }), /is not a directory/);
  });

  test('content types by extension', () => {
    assert.equal(contentTypeOf('index.html'), 'text/html; charset=utf-8');
    assert.equal(contentTypeOf('APP.JS'), 'text/javascript; charset=utf-8');
    assert.equal(contentTypeOf('style.css'), 'text/css; charset=utf-8');
    assert.equal(contentTypeOf('logo.svg'), 'image/svg+xml');
    assert.equal(contentTypeOf('Makefile'), 'application/octet-stream');
  });
});
