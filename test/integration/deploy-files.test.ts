// What can be checked of the Docker deployment without a Docker engine: the compose file parses and
// names files that exist, and the Dockerfile's build step (tsc -p tsconfig.build.json) produces the
// entry point its CMD runs, which then starts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown>;
  healthcheck?: { test: string[] };
}

describe('docker-compose.yml and broker/Dockerfile', () => {
  const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, ComposeService> };
  const dockerfile = readFileSync(join(root, 'broker/Dockerfile'), 'utf8');

  it('runs RabbitMQ with management and Thumper built from the Dockerfile, wired by env', () => {
    const { rabbitmq, thumper } = compose.services;
    assert.ok(rabbitmq && rabbitmq.image?.includes('management'), 'RabbitMQ image with the management plugin');
    assert.ok(rabbitmq.healthcheck, 'RabbitMQ has a health check Thumper can wait on');
    assert.equal(thumper?.build?.dockerfile, 'broker/Dockerfile');
    assert.ok(existsSync(join(root, thumper.build.context, thumper.build.dockerfile)));
    const url = new URL(thumper.environment?.['THUMPER_AMQP_URL'] ?? '');
    assert.equal(url.hostname, 'rabbitmq', 'Thumper reaches RabbitMQ by its service name');
    assert.equal(decodeURIComponent(url.username), rabbitmq.environment?.['RABBITMQ_DEFAULT_USER']);
    assert.ok(thumper.depends_on && 'rabbitmq' in thumper.depends_on);
  });

  it('every path the Dockerfile copies from the build context exists', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    assert.ok(sources.length >= 3);
    for (const s of sources) assert.ok(existsSync(join(root, s)), `COPY source ${s} exists`);
  });

  it('the build step emits the CMD entry point, and it starts (--help)', () => {
    const cmd = /^CMD \["node", "([^"]+)"\]/m.exec(dockerfile)?.[1];
    assert.equal(cmd, 'dist/broker/src/main.js');
    const out = mkdtempSync(join(root, '.tmp-build-'));
    try {
      execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'pipe' });
      const entry = join(out, cmd.replace(/^dist\//, ''));
      assert.ok(existsSync(entry), `${entry} emitted`);
      const run = spawnSync(process.execPath, [entry, '--help'], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /THUMPER_AMQP_URL/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
