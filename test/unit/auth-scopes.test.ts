// RabbitMQ OAuth 2 scopes: parsing, wildcard.erl matching, the vhost/resource/topic decisions of
// reference §6, and the jwt authority built on them. A property test holds the matcher to a regex.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Principal } from '../../broker/src/auth/authorizer.js';
import {
  checkAccess,
  compileWildcard,
  createJwtAuthority,
  matchWildcard,
  parseScope,
  parseScopes,
  vhostAccess,
} from '../../broker/src/auth/scopes.js';
import type { PermissionCheck } from '../../broker/src/destination/types.js';

function wildcard(raw: string) {
  const p = compileWildcard(raw);
  assert.ok(p, `pattern ${raw} compiles`);
  return p;
}

const matches = (raw: string, subject: string): boolean => matchWildcard(wildcard(raw), subject);

const topic = (name: string, permission: 'read' | 'write', routingKey: string): PermissionCheck => ({
  resource: 'topic',
  name,
  permission,
  routingKey,
});

const grants = (scopes: string[], vhost: string, check: PermissionCheck): boolean => checkAccess(vhost, check, parseScopes(scopes));

describe('wildcard matching (wildcard.erl)', () => {
  it('without * is an exact match', () => {
    assert.equal(matches('orders', 'orders'), true);
    assert.equal(matches('orders', 'orders2'), false);
    assert.equal(matches('orders', 'xorders'), false);
    assert.equal(matches('', ''), true);
    assert.equal(matches('', 'a'), false);
  });

  it('* matches any sequence, dots and slashes included, the empty one too', () => {
    assert.equal(matches('*', ''), true);
    assert.equal(matches('*', 'a.b/c'), true);
    assert.equal(matches('user_*', 'user_'), true);
    assert.equal(matches('user_*', 'user_x.y/z'), true);
    assert.equal(matches('*.b', 'a.b.b'), true);
    assert.equal(matches('a*b*c', 'abc'), true);
    assert.equal(matches('a*b*c', 'axxbyyc'), true);
    assert.equal(matches('a*b*c', 'acb'), false);
    assert.equal(matches('ab*ba', 'aba'), false, 'prefix and suffix may not overlap');
    assert.equal(matches('*ab*b', 'ab'), false, 'a middle part may not overlap the suffix');
  });

  it('has no AMQP topic semantics: # and a lone * in the subject are plain characters', () => {
    assert.equal(matches('user_x', '#'), false);
    assert.equal(matches('user_x', '*'), false);
    assert.equal(matches('#', 'anything'), false);
    assert.equal(matches('#', '#'), true);
  });

  it('decodes each part after splitting on *, so %2A is a literal *', () => {
    assert.equal(matches('a%2A', 'a*'), true);
    assert.equal(matches('a%2A', 'ab'), false);
    assert.equal(matches('%2F', '/'), true);
    assert.equal(matches('a%2Fb', 'a/b'), true);
  });

  it('decodes like cow_qs:urldecode: + is a space, %2B a plus', () => {
    assert.equal(matches('a+b', 'a b'), true);
    assert.equal(matches('a+b', 'a+b'), false);
    assert.equal(matches('a%2Bb', 'a+b'), true);
  });

  it('refuses patterns with a bad escape', () => {
    assert.equal(compileWildcard('a%2'), undefined);
    assert.equal(compileWildcard('%zz'), undefined);
    assert.equal(compileWildcard('%FF'), undefined, 'not UTF-8');
  });

  it('agrees with the equivalent regex (property)', () => {
    const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    // Few letters, so that parts repeat and overlap: that is where glob matchers go wrong.
    const alphabet = fc.oneof(
      { arbitrary: fc.constantFrom('a', 'b', '*'), weight: 6 },
      { arbitrary: fc.constantFrom('.', '/', '#'), weight: 1 },
    );
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 8 }), fc.string({ unit: alphabet, maxLength: 10 }), (raw, subject) => {
        const regex = new RegExp(`^${raw.split('*').map(escape).join('.*')}$`, 's');
        assert.equal(matches(raw, subject), regex.test(subject));
      }),
      { numRuns: 5000 },
    );
  });

  it('an escaped literal matches only itself (property)', () => {
    const encode = (s: string): string => encodeURIComponent(s).replaceAll('*', '%2A');
    fc.assert(
      fc.property(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), (value, other) => {
        fc.pre(!/[\uD800-\uDFFF]/.test(value));
        assert.equal(matches(encode(value), value), true);
        if (other !== value) assert.equal(matches(encode(value), other), false);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseScope', () => {
  it('reads 2- and 3-part permission scopes', () => {
    const two = parseScope('read:prod/stomp-subscription-*');
    assert.equal(two?.permission, 'read');
    assert.deepEqual(two?.vhost.parts, ['prod']);
    assert.deepEqual(two?.name.parts, ['stomp-subscription-', '']);
    assert.equal(two?.routingKey, undefined);
    const three = parseScope('write:prod/amq.topic/orders.*');
    assert.equal(three?.permission, 'write');
    assert.deepEqual(three?.routingKey?.parts, ['orders.', '']);
    assert.equal(parseScope('configure:*/*')?.permission, 'configure');
  });

  it('ignores malformed scopes', () => {
    for (const bad of [
      'read',
      'read:',
      'read:prod',
      'read:a/b/c/d',
      'READ:prod/q',
      'admin:prod/q',
      'tag:administrator',
      'openid',
      'read:prod/%zz',
      'read:prod/q/%2',
      ' read:prod/q',
    ]) {
      assert.equal(parseScope(bad), undefined, bad);
    }
  });

  it('splits on / before decoding: %2F is part of a segment', () => {
    const s = parseScope('read:%2F/a%2Fb/c');
    assert.deepEqual(s?.vhost.parts, ['/']);
    assert.deepEqual(s?.name.parts, ['a/b']);
    assert.deepEqual(s?.routingKey?.parts, ['c']);
  });
});

describe('scope decisions (reference §6)', () => {
  it('vhost access: any scope whose vhost pattern matches, whatever its permission', () => {
    assert.equal(vhostAccess('prod', parseScopes(['configure:prod/x'])), true);
    assert.equal(vhostAccess('prod', parseScopes(['write:prod/x/y'])), true);
    assert.equal(vhostAccess('prod', parseScopes(['read:pr*/x'])), true);
    assert.equal(vhostAccess('prod', parseScopes(['read:dev/x'])), false);
    assert.equal(vhostAccess('/', parseScopes(['read:%2F/x'])), true);
    assert.equal(vhostAccess('/', parseScopes(['read:/x'])), false, 'an empty vhost pattern is not /');
    assert.equal(vhostAccess('prod', parseScopes(['tag:administrator', 'garbage'])), false);
    assert.equal(vhostAccess('prod', []), false);
  });

  it('resource check: same permission, matching vhost and name, from 2- or 3-part scopes', () => {
    const read = (name: string): PermissionCheck => ({ resource: 'queue', name, permission: 'read' });
    assert.equal(grants(['read:prod/stomp-subscription-*'], 'prod', read('stomp-subscription-abc')), true);
    assert.equal(grants(['read:prod/amq.topic/orders.*'], 'prod', { resource: 'exchange', name: 'amq.topic', permission: 'read' }), true);
    assert.equal(grants(['write:prod/stomp-subscription-*'], 'prod', read('stomp-subscription-abc')), false, 'other permission');
    assert.equal(grants(['read:dev/stomp-subscription-*'], 'prod', read('stomp-subscription-abc')), false, 'other vhost');
    assert.equal(grants(['read:prod/orders'], 'prod', read('orders2')), false, 'other name');
    assert.equal(grants(['configure:*/*'], 'any', { resource: 'queue', name: 'q', permission: 'configure' }), true);
  });

  it('topic check: only a 3-part scope with matching vhost, exchange and routing key', () => {
    assert.equal(grants(['read:prod/amq.topic/orders.*'], 'prod', topic('amq.topic', 'read', 'orders.eu')), true);
    assert.equal(grants(['read:prod/amq.topic'], 'prod', topic('amq.topic', 'read', 'orders.eu')), false, '2-part never grants topic');
    assert.equal(grants(['read:prod/*'], 'prod', topic('amq.topic', 'read', '')), false, '2-part never grants topic');
    assert.equal(grants(['write:prod/amq.topic/orders.*'], 'prod', topic('amq.topic', 'read', 'orders.eu')), false);
    assert.equal(grants(['read:prod/amq.topic/orders.*'], 'prod', topic('amq.direct', 'read', 'orders.eu')), false);
    assert.equal(grants(['read:prod/amq.topic/orders.*'], 'dev', topic('amq.topic', 'read', 'orders.eu')), false);
  });

  it('a per-user routing-key scope grants that user and nothing wider', () => {
    const scopes = ['read:*/feed/user_x'];
    assert.equal(grants(scopes, 'prod', topic('feed', 'read', 'user_x')), true);
    assert.equal(grants(scopes, 'prod', topic('feed', 'read', 'user_y')), false);
    assert.equal(grants(scopes, 'prod', topic('feed', 'read', '#')), false);
    assert.equal(grants(scopes, 'prod', topic('feed', 'read', '*')), false);
    assert.equal(grants(scopes, 'prod', topic('feed', 'read', 'user_x.#')), false);
  });

  it('vhost / is written %2F', () => {
    const scopes = ['read:%2F/feed/user_*'];
    assert.equal(grants(scopes, '/', topic('feed', 'read', 'user_x')), true);
    assert.equal(grants(scopes, 'prod', topic('feed', 'read', 'user_x')), false);
    assert.equal(grants(scopes, '/', topic('feed', 'read', 'admin')), false);
  });

  it('malformed scopes never grant, well-formed neighbours still do', () => {
    const scopes = ['read:prod/%zz*', 'read:prod', 'read:prod/ok'];
    assert.equal(grants(scopes, 'prod', { resource: 'queue', name: '%zz-anything', permission: 'read' }), false);
    assert.equal(grants(scopes, 'prod', { resource: 'queue', name: 'ok', permission: 'read' }), true);
  });
});

describe('jwt authority', () => {
  const NOW = 1_700_000_000_000;
  const authority = createJwtAuthority({ now: () => NOW });
  const principal = (over: Partial<Principal> = {}): Principal => ({
    username: 'alice',
    vhost: 'prod',
    tags: [],
    authenticatedBy: 'jwt',
    expiresAt: NOW + 60_000,
    scopes: ['read:prod/amq.topic/orders.*', 'read:prod/amq.topic', 'configure:prod/stomp-subscription-*'],
    ...over,
  });

  it('opens the vhost when a scope names it', async () => {
    assert.deepEqual(await authority.checkVhost(principal(), '127.0.0.1'), { ok: true, value: true });
  });

  it("refuses another vhost with RabbitMQ's wording", async () => {
    assert.deepEqual(await authority.checkVhost(principal({ vhost: 'dev' }), '127.0.0.1'), {
      ok: false,
      reason: "Virtual host 'dev' access denied",
    });
  });

  it('grants what the scopes grant and refuses the rest with an empty reason', async () => {
    const p = principal();
    assert.equal((await authority.authorize(p, topic('amq.topic', 'read', 'orders.eu'))).ok, true);
    assert.equal((await authority.authorize(p, { resource: 'exchange', name: 'amq.topic', permission: 'read' })).ok, true);
    assert.deepEqual(await authority.authorize(p, topic('amq.topic', 'write', 'orders.eu')), { ok: false, reason: '' });
    assert.deepEqual(await authority.authorize(p, { resource: 'queue', name: 'stomp-subscription-1', permission: 'read' }), {
      ok: false,
      reason: '',
    });
  });

  it('refuses everything once the token has expired', async () => {
    const p = principal({ expiresAt: NOW });
    assert.deepEqual(await authority.checkVhost(p, '127.0.0.1'), { ok: false, reason: 'token expired' });
    assert.deepEqual(await authority.authorize(p, topic('amq.topic', 'read', 'orders.eu')), { ok: false, reason: 'token expired' });
  });

  it('refuses a principal that carries no scopes (not vouched for by a JWT)', async () => {
    const { scopes: _, ...rest } = principal();
    const plain: Principal = { ...rest, authenticatedBy: 'http' };
    assert.equal((await authority.checkVhost(plain, '127.0.0.1')).ok, false);
    assert.equal((await authority.authorize(plain, { resource: 'exchange', name: 'amq.topic', permission: 'read' })).ok, false);
  });
});
