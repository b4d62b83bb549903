// /readyz follows the auth service: a node whose HTTP auth service is unreachable would refuse every
// CONNECT, so it reports 503 until the service is back.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpStatus, startThumper } from '../helpers/thumper-server.js';

async function eventually(check: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('/readyz and the auth service', () => {
  it('503 while the HTTP auth service is unreachable, 200 again once it is back', { timeout: 60_000 }, async () => {
    const auth = createServer((_req, res) => res.end('allow'));
    await new Promise<void>((resolve) => auth.listen(0, '127.0.0.1', resolve));
    const port = (auth.address() as AddressInfo).port;
    const thumper = await startThumper({ THUMPER_ENGINE: 'memory', THUMPER_AUTH_BACKENDS: 'http', THUMPER_AUTH_HTTP_BASE_URL: `http://127.0.0.1:${port}/auth` });
    try {
      assert.equal(await httpStatus(thumper.port, '/readyz'), 200);
      await new Promise<void>((resolve) => auth.close(() => resolve()));
      await eventually(async () => (await httpStatus(thumper.port, '/readyz')) === 503, 'readyz 503 with the auth service down');
      assert.equal(await httpStatus(thumper.port, '/healthz'), 200, 'alive all the same');
      await new Promise<void>((resolve) => auth.listen(port, '127.0.0.1', resolve));
      await eventually(async () => (await httpStatus(thumper.port, '/readyz')) === 200, 'readyz 200 with the auth service back');
    } finally {
      await thumper.stop();
      auth.close();
    }
  });
});
