// What can be checked of the Docker deployment without a Docker engine: the compose file parses and
// names files that exist, each service's environment is a configuration its program accepts, and
// each Dockerfile's build step (tsc -p tsconfig.build.json) produces the entry point its CMD runs,
// which then starts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { readConfig } from '../../auth-backend/src/config.js';
import { loadConfig } from '../../broker/src/server/config.js';

const root = new URL('../../', import.meta.url).pathname;

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown>;
  volumes?: string[];
  healthcheck?: { test: string[] };
}

describe('docker-compose.yml and the Dockerfiles', () => {
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
    const rabbitConf = readFileSync(join(root, 'auth-backend/rabbitmq.conf'), 'utf8');
    assert.match(rabbitConf, new RegExp(`^default_user = ${decodeURIComponent(url.username)}$`, 'm'), 'Thumper logs in as the default user');
    assert.ok(thumper.depends_on && 'rabbitmq' in thumper.depends_on);
  });

  it("Thumper's compose environment is a configuration Thumper accepts, with auth against auth-backend", () => {
    const { thumper } = compose.services;
    const loaded = loadConfig({ argv: [], env: thumper?.environment ?? {} });
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.error);
    assert.equal(loaded.value.engine, 'amqp');
    assert.deepEqual(loaded.value.auth.backends, ['jwt', 'http']);
    assert.equal(new URL(loaded.value.auth.http?.userPath ?? '').host, 'auth-backend:8000');
    assert.ok(thumper?.depends_on && 'auth-backend' in thumper.depends_on);
  });

  it("auth-backend's compose environment is accepted, and its JWT secret is Thumper's", () => {
    const { thumper } = compose.services;
    const backend = compose.services['auth-backend'];
    const config = readConfig(backend?.environment ?? {}, (f) => readFileSync(f, 'utf8'));
    assert.ok(config.ok, config.ok ? '' : config.error);
    assert.equal(config.value.jwtSecret, thumper?.environment?.['THUMPER_AUTH_JWT_SECRET']);
    assert.equal(config.value.port, 8000);
    assert.ok(existsSync(join(root, 'auth-backend/Dockerfile')));
  });

  it('RabbitMQ asks auth-backend too (auth_backend_http enabled, four paths on its service name)', () => {
    const { rabbitmq } = compose.services;
    for (const volume of rabbitmq?.volumes ?? []) {
      const source = volume.split(':')[0] ?? '';
      assert.ok(existsSync(join(root, source)), `volume source ${source} exists`);
    }
    const conf = readFileSync(join(root, 'auth-backend/rabbitmq.conf'), 'utf8');
    assert.match(readFileSync(join(root, 'auth-backend/enabled_plugins'), 'utf8'), /rabbitmq_auth_backend_http/);
    assert.match(conf, /^auth_backends\.2 = http$/m);
    for (const path of ['user', 'vhost', 'resource', 'topic']) {
      assert.match(conf, new RegExp(`^auth_http\\.${path}_path\\s*= http://auth-backend:8000/auth/${path}$`, 'm'));
    }
  });

  for (const file of ['broker/Dockerfile', 'auth-backend/Dockerfile']) {
    it(`every path ${file} copies from the build context exists`, () => {
      const text = readFileSync(join(root, file), 'utf8');
      const sources = [...text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
      assert.ok(sources.length >= 3);
      for (const s of sources) assert.ok(existsSync(join(root, s)), `COPY source ${s} exists`);
    });
  }

  it('the build step emits both CMD entry points; Thumper starts (--help), auth-backend finds its rules', () => {
    const cmd = /^CMD \["node", "([^"]+)"\]/m.exec(dockerfile)?.[1];
    assert.equal(cmd, 'dist/broker/src/main.js');
    const authDockerfile = readFileSync(join(root, 'auth-backend/Dockerfile'), 'utf8');
    const authCmd = /^CMD \["node", "([^"]+)"\]/m.exec(authDockerfile)?.[1];
    assert.equal(authCmd, 'dist/auth-backend/src/main.js');
    assert.match(authDockerfile, /^COPY --from=build \/app\/auth-backend\/rules\.json \.\/dist\/auth-backend\/rules\.json$/m);
    const out = mkdtempSync(join(root, '.tmp-build-'));
    try {
      execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'pipe' });
      const entry = join(out, cmd.replace(/^dist\//, ''));
      assert.ok(existsSync(entry), `${entry} emitted`);
      const run = spawnSync(process.execPath, [entry, '--help'], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /THUMPER_AMQP_URL/);
      assert.ok(existsSync(join(out, authCmd.replace(/^dist\//, ''))), 'auth-backend entry emitted');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
