// What can be checked of the Docker deployment without a Docker engine: the compose file parses and
// names files that exist, each service's environment is a configuration its program accepts, each
// Dockerfile's build step produces the entry point it runs, which then starts, and the nginx config
// names exactly the compose Thumper nodes and passes `nginx -t` with Debian's nginx (the nginx the
// nginx image installs).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { readConfig } from '../../auth-backend/src/config.js';
import { loadConfig } from '../../broker/src/server/config.js';

const root = new URL('../../', import.meta.url).pathname;

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition?: string }>;
  volumes?: string[];
  ports?: string[];
  command?: string[];
  healthcheck?: { test: string[] };
}

const NGINX = '/usr/sbin/nginx';
const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const DOCKERFILES = ['broker/Dockerfile', 'auth-backend/Dockerfile', 'broker/deploy/nginx.Dockerfile', 'client-examples/node-publisher/Dockerfile'];

/** `server host:port` lines of each `upstream` block, split by the http and stream sections. */
function nginxUpstreams(conf: string): { http: Map<string, string[]>; stream: Map<string, string[]> } {
  const at = conf.search(/^stream \{/m);
  const blocks = (text: string): Map<string, string[]> =>
    new Map([...text.matchAll(/upstream (\S+) \{([^}]*)\}/g)].map((m) => [m[1]!, [...m[2]!.matchAll(/^\s*server (\S+);/gm)].map((s) => s[1]!)]));
  return { http: blocks(at < 0 ? conf : conf.slice(0, at)), stream: blocks(at < 0 ? '' : conf.slice(at)) };
}

describe('docker-compose.yml and the Dockerfiles', () => {
  const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, ComposeService> };
  const dockerfile = readFileSync(join(root, 'broker/Dockerfile'), 'utf8');
  const nodeNames = Object.keys(compose.services).filter((name) => compose.services[name]?.build?.dockerfile === 'broker/Dockerfile');
  const nodes = nodeNames.map((name) => [name, compose.services[name]!] as const);

  it('runs RabbitMQ with management and two Thumper nodes built from the Dockerfile, wired by env', () => {
    const { rabbitmq } = compose.services;
    assert.ok(rabbitmq && rabbitmq.image?.includes('management'), 'RabbitMQ image with the management plugin');
    assert.ok(rabbitmq.healthcheck, 'RabbitMQ has a health check Thumper can wait on');
    assert.deepEqual(nodeNames, ['thumper-1', 'thumper-2']);
    const rabbitConf = readFileSync(join(root, 'auth-backend/rabbitmq.conf'), 'utf8');
    for (const [name, node] of nodes) {
      const url = new URL(node.environment?.['THUMPER_AMQP_URL'] ?? '');
      assert.equal(url.hostname, 'rabbitmq', `${name} reaches RabbitMQ by its service name`);
      assert.match(rabbitConf, new RegExp(`^default_user = ${decodeURIComponent(url.username)}$`, 'm'), `${name} logs in as the default user`);
      assert.equal(node.depends_on?.['rabbitmq']?.condition, 'service_healthy');
      assert.equal(node.ports, undefined, `${name} is reached through nginx, not published`);
    }
  });

  it("each node's compose environment is a configuration Thumper accepts, with auth against auth-backend", () => {
    for (const [name, node] of nodes) {
      const loaded = loadConfig({ argv: [], env: node.environment ?? {} });
      assert.ok(loaded.ok, loaded.ok ? '' : `${name}: ${loaded.error}`);
      assert.equal(loaded.value.engine, 'amqp');
      assert.deepEqual(loaded.value.auth.backends, ['jwt', 'http']);
      assert.equal(new URL(loaded.value.auth.http?.userPath ?? '').host, 'auth-backend:8000');
      assert.equal(node.depends_on?.['auth-backend']?.condition, 'service_healthy');
    }
  });

  it("auth-backend's compose environment is accepted, and its JWT secret is every node's", () => {
    const backend = compose.services['auth-backend'];
    const config = readConfig(backend?.environment ?? {}, (f) => readFileSync(f, 'utf8'));
    assert.ok(config.ok, config.ok ? '' : config.error);
    for (const [, node] of nodes) assert.equal(config.value.jwtSecret, node.environment?.['THUMPER_AUTH_JWT_SECRET']);
    assert.equal(config.value.port, 8000);
  });

  it('every build context, Dockerfile and volume source the compose file names exists', () => {
    const named: string[] = [];
    for (const [name, service] of Object.entries(compose.services)) {
      assert.ok(service.image ?? service.build, `${name} has an image or a build`);
      if (service.build) named.push(service.build.context, join(service.build.context, service.build.dockerfile));
      for (const volume of service.volumes ?? []) named.push(volume.split(':')[0] ?? '');
    }
    assert.ok(named.length >= 12);
    for (const path of named) assert.ok(existsSync(join(root, path)), `${path} exists`);
    const built = Object.values(compose.services).flatMap((s) => (s.build ? [s.build.dockerfile] : []));
    assert.deepEqual([...new Set(built)].sort(), [...DOCKERFILES].sort());
  });

  for (const file of DOCKERFILES) {
    it(`${file}: multi-stage or distro-packaged, runs as a non-root user`, () => {
      const text = readFileSync(join(root, file), 'utf8');
      const lastStage = text.slice(text.lastIndexOf('\nFROM '));
      if (!file.includes('nginx')) assert.match(text, /^FROM \S+ AS build$/m, `${file} builds in a stage of its own`);
      const user = /^USER (\S+)$/m.exec(lastStage)?.[1];
      assert.ok(user !== undefined && user !== 'root' && user !== '0', `${file} ends as a non-root USER`);
      if (file !== 'client-examples/node-publisher/Dockerfile') assert.match(lastStage, /^HEALTHCHECK /m, `${file} has a health check`);
    });
  }

  it('RabbitMQ asks auth-backend too (auth_backend_http enabled, four paths on its service name)', () => {
    const conf = readFileSync(join(root, 'auth-backend/rabbitmq.conf'), 'utf8');
    assert.match(readFileSync(join(root, 'auth-backend/enabled_plugins'), 'utf8'), /rabbitmq_auth_backend_http/);
    assert.match(conf, /^auth_backends\.2 = http$/m);
    for (const path of ['user', 'vhost', 'resource', 'topic']) {
      assert.match(conf, new RegExp(`^auth_http\\.${path}_path\\s*= http://auth-backend:8000/auth/${path}$`, 'm'));
    }
  });

  for (const file of DOCKERFILES) {
    it(`every path ${file} copies from the build context exists`, () => {
      const text = readFileSync(join(root, file), 'utf8');
      const sources = [...text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
      assert.ok(sources.length >= 1);
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

  it('the publisher image compiles publish.ts with its Dockerfile command and runs it, against RabbitMQ as `publisher`', () => {
    const service = compose.services['publisher'];
    const url = new URL(service?.environment?.['AMQP_URL'] ?? '');
    assert.equal(url.hostname, 'rabbitmq');
    assert.equal(url.username, 'publisher', 'publishes as the user auth-backend lets write feed');
    assert.match(readFileSync(join(root, 'auth-backend/rules.json'), 'utf8'), /"username": "publisher"/);
    assert.equal(service?.depends_on?.['rabbitmq']?.condition, 'service_healthy');
    assert.equal(service?.command?.[0], 'user_x');
    const text = readFileSync(join(root, 'client-examples/node-publisher/Dockerfile'), 'utf8');
    assert.match(text, /^ENTRYPOINT \["node", "dist\/publish\.js"\]$/m);
    // The RUN line's tsc arguments, as the build stage runs them, with only the output directory moved.
    const tscArgs = /^RUN npx tsc (.+?) \\$/m.exec(text)?.[1]?.split(/\s+/) ?? [];
    assert.ok(tscArgs.includes('client-examples/node-publisher/publish.ts'), 'the build stage compiles publish.ts');
    const out = mkdtempSync(join(root, '.tmp-publisher-'));
    try {
      const args = tscArgs.map((a, i) => (tscArgs[i - 1] === '--outDir' ? out : a));
      execFileSync(join(root, 'node_modules/.bin/tsc'), args, { cwd: root, stdio: 'pipe' });
      const entry = join(out, 'publish.js');
      assert.ok(existsSync(entry), `${entry} emitted`);
      // Without a user it prints its usage and exits 2, before touching the network.
      const run = spawnSync(process.execPath, [entry], { cwd: root, encoding: 'utf8', timeout: 20_000, env: { ...process.env, FEED_USER: '' } });
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, /usage: publish\.ts <user>/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  describe('nginx in front of the nodes (broker/deploy/nginx.conf)', () => {
    const confPath = join(root, 'broker/deploy/nginx.conf');
    const conf = readFileSync(confPath, 'utf8');
    const upstreams = nginxUpstreams(conf);

    it('every upstream names exactly the compose Thumper nodes, on their HTTP or STOMP port', () => {
      assert.deepEqual([...upstreams.http.keys()].sort(), ['thumper_sockjs', 'thumper_ws']);
      assert.deepEqual([...upstreams.stream.keys()], ['thumper_stomp']);
      for (const servers of upstreams.http.values()) assert.deepEqual(servers, nodeNames.map((n) => `${n}:15674`));
      assert.deepEqual(upstreams.stream.get('thumper_stomp'), nodeNames.map((n) => `${n}:61613`));
    });

    it('is the config the compose nginx service runs, published on 15674 and 61613, after both nodes', () => {
      const service = compose.services['nginx'];
      assert.equal(service?.build?.dockerfile, 'broker/deploy/nginx.Dockerfile');
      const text = readFileSync(join(root, 'broker/deploy/nginx.Dockerfile'), 'utf8');
      assert.match(text, /^COPY broker\/deploy\/nginx\.conf \/etc\/nginx\/thumper\.conf$/m);
      assert.match(text, /^CMD \["nginx", .*"-c", "\/etc\/nginx\/thumper\.conf"/m);
      assert.match(text, /apt-get install .*\bnginx libnginx-mod-stream\b/, 'the same Debian packages the test checks with');
      assert.deepEqual(service?.ports, ['15674:15674', '61613:61613']);
      for (const name of nodeNames) assert.equal(service?.depends_on?.[name]?.condition, 'service_healthy');
    });

    it('upgrades WebSockets, pins SockJS sessions, does not buffer SockJS streams, outwaits heart-beats', () => {
      assert.match(conf, /map \$http_upgrade \$connection_upgrade \{/);
      assert.match(conf, /proxy_set_header Upgrade \$http_upgrade;/);
      assert.match(conf, /proxy_set_header Connection \$connection_upgrade;/);
      assert.match(conf, /proxy_http_version 1\.1;/);
      assert.match(conf, /upstream thumper_sockjs \{\s*hash \$sockjs_session consistent;/);
      const stomp = /location \/stomp \{([^}]*)\}/.exec(conf)?.[1] ?? '';
      assert.match(stomp, /proxy_pass http:\/\/thumper_sockjs;/);
      assert.match(stomp, /proxy_buffering off;/);
      // Thumper pings WebSockets every 30 s and SockJS sends a heartbeat frame every 25 s.
      const read = Number(/proxy_read_timeout (\d+)s;/.exec(conf)?.[1]);
      assert.ok(read > 2 * 30, `proxy_read_timeout ${read}s outlasts two missed pings`);
      // The session id map takes the segment after the server id, as SockJS URLs are built.
      const sidPattern = /~(\^\/stomp\/\S+)\s+\$sid;/.exec(conf)?.[1];
      assert.ok(sidPattern);
      const sid = new RegExp(sidPattern).exec('/stomp/123/abcdef/xhr_streaming')?.groups?.['sid'];
      assert.equal(sid, 'abcdef');
      assert.equal(new RegExp(sidPattern).exec('/stomp/info'), null);
    });

    it('passes `nginx -t` with Debian nginx and its stream module', (t) => {
      if (!existsSync(NGINX) || !existsSync(NGINX_STREAM_MODULE)) {
        assert.fail(`Debian's nginx and its stream module are needed: apt-get install -y nginx libnginx-mod-stream (npm test installs them as root)`);
      }
      // nginx -t resolves upstream host names, and thumper-1/thumper-2 exist only on the compose
      // network: a temporary copy names them by loopback addresses instead, nothing else changes.
      const prefix = mkdtempSync(join(tmpdir(), 'thumper-nginx-'));
      t.after(() => rmSync(prefix, { recursive: true, force: true }));
      let copy = conf;
      nodeNames.forEach((name, i) => {
        copy = copy.replaceAll(`server ${name}:`, `server 127.0.0.${i + 1}:`);
      });
      assert.doesNotMatch(copy, /server thumper-/);
      writeFileSync(join(prefix, 'nginx.conf'), copy);
      // `access_log /dev/stdout` opens the file behind fd 1, which must be a file or a pipe (as in a
      // container), not the socket node gives a child: here it is a file.
      const stdout = openSync(join(prefix, 'stdout'), 'w');
      t.after(() => closeSync(stdout));
      const nginxT = (config: string) =>
        spawnSync(NGINX, ['-t', '-e', 'stderr', '-p', `${prefix}/`, '-c', config], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', stdout, 'pipe'] });
      const run = nginxT(join(prefix, 'nginx.conf'));
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stderr, /test is successful/);
      // The unmodified file fails only on the names this test replaced.
      const original = nginxT(confPath);
      assert.notEqual(original.status, 0);
      assert.match(original.stderr, /host not found in upstream "thumper-1:15674"/);
    });
  });
});
