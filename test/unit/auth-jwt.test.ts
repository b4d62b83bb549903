// JWT verification and the jwt authenticator: configurations that must be refused, the usual attacks
// on JWT verifiers (alg none, algorithm confusion, forged signatures, expiry, audience, issuer),
// and how claims become a username, scopes and tags (reference §6). Keys are made here.

import assert from 'node:assert/strict';
import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import jwt from 'jsonwebtoken';
import type { ConnectRequest } from '../../broker/src/auth/authorizer.js';
import {
  createJwtAuthenticator,
  createJwtVerifier,
  expandScope,
  looksLikeJwt,
  type JwtOptions,
  type JwtVerifier,
} from '../../broker/src/auth/jwt.js';
import { createJwtAuthority } from '../../broker/src/auth/scopes.js';

const NOW = 1_700_000_000_000;
const NOW_S = NOW / 1000;
const SECRET = 'a-32-byte-secret-for-hs256-tests';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const pem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();
const RSA_PEM = pem(rsa.publicKey);
const EC_PEM = pem(ec.publicKey);

/** No key: each test adds the one it needs. */
const KEYLESS: JwtOptions = {
  algorithms: ['RS256'],
  usernameClaims: ['sub', 'client_id'],
  scopePrefix: 'rabbitmq.',
  clockToleranceSeconds: 0,
  now: () => NOW,
};
const BASE: JwtOptions = { ...KEYLESS, publicKey: RSA_PEM };

function verifierFor(over: Partial<JwtOptions> = {}, base: JwtOptions = BASE): JwtVerifier {
  const created = createJwtVerifier({ ...base, ...over });
  assert.ok(created.ok, created.ok ? '' : created.error);
  return created.value;
}

function refusal(over: Partial<JwtOptions>, base: JwtOptions = BASE): string {
  const created = createJwtVerifier({ ...base, ...over });
  assert.equal(created.ok, false, 'configuration must be refused');
  return created.ok ? '' : created.error;
}

type Claims = Record<string, unknown>;
const claims = (over: Claims = {}): Claims => ({ sub: 'alice', exp: NOW_S + 600, scope: 'rabbitmq.read:prod/q', ...over });

const signRs256 = (payload: Claims, key: KeyObject = rsa.privateKey): string =>
  jwt.sign(payload, key, { algorithm: 'RS256', noTimestamp: true });

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token built by hand, as an attacker would, signed with HMAC-SHA256 over `secret` (or unsigned). */
function handMade(header: Claims, payload: Claims, hmacSecret?: string): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = hmacSecret === undefined ? '' : createHmac('sha256', hmacSecret).update(input).digest('base64url');
  return `${input}.${signature}`;
}

/** RS256 over any header and payload, for claims jsonwebtoken's sign refuses to write. */
function rawRs256(header: Claims, payload: Claims): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(rsa.privateKey).toString('base64url')}`;
}

function verified(verifier: JwtVerifier, token: string, vhost = 'prod') {
  const result = verifier.verify(token, vhost);
  assert.ok(result.ok, result.ok ? '' : result.reason);
  return result.value;
}

function reason(verifier: JwtVerifier, token: string, vhost = 'prod'): string {
  const result = verifier.verify(token, vhost);
  assert.equal(result.ok, false, 'token must be refused');
  return result.ok ? '' : result.reason;
}

describe('createJwtVerifier refuses unsafe or broken configurations', () => {
  it('accepts sound ones', () => {
    verifierFor();
    verifierFor({ algorithms: ['RS256', 'RS512', 'PS256'] });
    verifierFor({ algorithms: ['ES256'], publicKey: EC_PEM });
    verifierFor({ algorithms: ['HS256', 'HS512'], secret: SECRET }, KEYLESS);
  });

  it('an empty algorithm list', () => {
    assert.match(refusal({ algorithms: [] }), /at least one algorithm/);
  });

  it("'none' anywhere, in any case", () => {
    assert.match(refusal({ algorithms: ['RS256', 'none' as never] }), /'none' is never accepted/);
    assert.match(refusal({ algorithms: ['None' as never] }), /'none' is never accepted/);
  });

  it('an unknown algorithm', () => {
    assert.match(refusal({ algorithms: ['RS257' as never] }), /unknown algorithm 'RS257'/);
  });

  it('HS without a secret, RS/ES/PS without a public key', () => {
    assert.match(refusal({ algorithms: ['HS256'] }, KEYLESS), /HS256 needs a secret/);
    assert.match(refusal({ algorithms: ['HS256'], secret: '' }, KEYLESS), /HS256 needs a secret/);
    assert.match(refusal({ algorithms: ['RS256'] }, KEYLESS), /needs a publicKey/);
    assert.match(refusal({ algorithms: ['ES256'] }, KEYLESS), /needs a publicKey/);
    assert.match(refusal({ algorithms: ['PS256'] }, KEYLESS), /needs a publicKey/);
  });

  it('HS mixed with asymmetric algorithms (algorithm confusion)', () => {
    assert.match(refusal({ algorithms: ['RS256', 'HS256'], secret: SECRET }, KEYLESS), /algorithm confusion/);
    assert.match(refusal({ algorithms: ['HS256', 'ES256'], secret: SECRET }, KEYLESS), /algorithm confusion/);
    assert.match(refusal({ algorithms: ['HS256'], secret: SECRET, publicKey: RSA_PEM }), /not both/);
  });

  it('a secret shorter than 32 bytes, saying why', () => {
    const error = refusal({ algorithms: ['HS256'], secret: 'x'.repeat(31) }, KEYLESS);
    assert.match(error, /at least 32 bytes/);
    assert.match(error, /guessed offline/);
  });

  it('a public key that does not parse', () => {
    assert.match(refusal({ publicKey: 'not a pem' }), /PEM/);
    assert.match(refusal({ publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' }), /does not parse/);
  });

  it('a key whose type does not fit the algorithms', () => {
    assert.match(refusal({ algorithms: ['RS256'], publicKey: EC_PEM }), /RS256 needs an RSA public key, got ec/);
    assert.match(refusal({ algorithms: ['PS256'], publicKey: EC_PEM }), /PS256 needs an RSA public key/);
    assert.match(refusal({ algorithms: ['ES256'], publicKey: RSA_PEM }), /ES256 needs an EC public key, got rsa/);
    assert.match(refusal({ algorithms: ['ES384'], publicKey: EC_PEM }), /ES384 needs an EC key on secp384r1/);
    assert.match(refusal({ algorithms: ['RS256', 'ES256'], publicKey: RSA_PEM }), /ES256 needs an EC public key/);
  });

  it('bad numbers and empty strings', () => {
    assert.match(refusal({ clockToleranceSeconds: -1 }), /clockToleranceSeconds/);
    assert.match(refusal({ clockToleranceSeconds: Number.NaN }), /clockToleranceSeconds/);
    assert.match(refusal({ usernameClaims: [] }), /usernameClaims/);
    assert.match(refusal({ issuer: '' }), /issuer must not be empty/);
    assert.match(refusal({ audience: '' }), /audience must not be empty/);
  });
});

describe('verify: attacks', () => {
  const verifier = verifierFor();

  it('accepts the genuine token the attacks start from', () => {
    assert.equal(verified(verifier, signRs256(claims())).username, 'alice');
  });

  it("refuses an unsigned token (alg 'none'), however spelled", () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const token = handMade({ alg, typ: 'JWT' }, claims());
      assert.equal(reason(verifier, token), 'invalid token: algorithm not allowed', alg);
    }
  });

  it('refuses an allowed alg with the signature stripped', () => {
    const [header, payload] = signRs256(claims()).split('.');
    assert.equal(reason(verifier, `${header}.${payload}.`), 'invalid token: unsigned');
  });

  it('refuses HS256 signed with the RSA public key PEM as HMAC secret (algorithm confusion)', () => {
    const token = handMade({ alg: 'HS256', typ: 'JWT' }, claims({ scope: 'rabbitmq.configure:*/*' }), RSA_PEM);
    assert.equal(reason(verifier, token), 'invalid token: algorithm not allowed');
    // The forgery is well made: a verifier that wrongly took the PEM as an HMAC secret accepts it.
    const naive = verifierFor({ algorithms: ['HS256'], secret: RSA_PEM }, KEYLESS);
    assert.equal(verified(naive, token).username, 'alice');
  });

  it('refuses a token signed by another key', () => {
    assert.equal(reason(verifier, signRs256(claims(), otherRsa.privateKey)), 'invalid token: bad signature');
  });

  it('refuses a genuine signature over a changed payload', () => {
    const [header, , signature] = signRs256(claims()).split('.');
    const forged = `${header}.${b64(claims({ scope: 'rabbitmq.configure:*/*' }))}.${signature}`;
    assert.equal(reason(verifier, forged), 'invalid token: bad signature');
  });

  it('refuses an RS256 token when only RS512 is allowed', () => {
    assert.equal(reason(verifierFor({ algorithms: ['RS512'] }), signRs256(claims())), 'invalid token: algorithm not allowed');
  });

  it('refuses an expired token, within the clock tolerance it still passes', () => {
    const token = signRs256(claims({ exp: NOW_S - 10 }));
    assert.equal(reason(verifier, token), 'token expired');
    assert.equal(reason(verifier, signRs256(claims({ exp: NOW_S }))), 'token expired', 'exp is exclusive');
    assert.equal(verified(verifierFor({ clockToleranceSeconds: 30 }), token).username, 'alice');
  });

  it('refuses a token without exp: tokens must expire', () => {
    const { exp: _, ...noExp } = claims();
    assert.equal(reason(verifier, signRs256(noExp)), 'invalid token: no exp claim (tokens must expire)');
  });

  it('refuses a token with a non-numeric exp', () => {
    assert.equal(reason(verifier, rawRs256({ alg: 'RS256' }, claims({ exp: 'tomorrow' }))), 'invalid token: bad exp claim');
  });

  it('refuses a token that is not valid yet (nbf)', () => {
    assert.equal(reason(verifier, signRs256(claims({ nbf: NOW_S + 60 }))), 'invalid token: not yet valid (nbf)');
    assert.equal(verified(verifier, signRs256(claims({ nbf: NOW_S }))).username, 'alice');
  });

  it('checks issuer and audience when configured', () => {
    const strict = verifierFor({ issuer: 'https://idp.example', audience: 'rabbitmq' });
    const good = claims({ iss: 'https://idp.example', aud: ['other', 'rabbitmq'] });
    assert.equal(verified(strict, signRs256(good)).username, 'alice');
    assert.equal(reason(strict, signRs256({ ...good, iss: 'https://evil.example' })), 'invalid token: wrong issuer');
    assert.equal(reason(strict, signRs256({ ...good, aud: 'other' })), 'invalid token: wrong audience');
    const { aud: _, ...noAud } = good;
    assert.equal(reason(strict, signRs256(noAud)), 'invalid token: wrong audience');
  });

  it('refuses a token with a crit header it cannot honour', () => {
    const token = rawRs256({ alg: 'RS256', crit: ['exp'] }, claims());
    assert.equal(reason(verifier, token), 'invalid token: unsupported crit header');
  });

  it('refuses malformed tokens without throwing', () => {
    const header = b64({ alg: 'RS256' });
    const malformed = ['', 'abc', 'a.b', 'a.b.c', '...', 'eyJ.eyJ.sig', `${header}.!!!.abc`, `${b64('RS256')}.${b64({})}.x`];
    for (const token of malformed) {
      assert.equal(reason(verifier, token), 'invalid token: malformed', JSON.stringify(token));
    }
  });
});

describe('verify: other algorithms', () => {
  it('HS256 with a secret', () => {
    const v = verifierFor({ algorithms: ['HS256'], secret: SECRET }, KEYLESS);
    assert.equal(verified(v, jwt.sign(claims(), SECRET, { algorithm: 'HS256', noTimestamp: true })).username, 'alice');
    assert.equal(reason(v, jwt.sign(claims(), `${SECRET}!`, { algorithm: 'HS256', noTimestamp: true })), 'invalid token: bad signature');
  });

  it('ES256 and PS256', () => {
    const es = verifierFor({ algorithms: ['ES256'], publicKey: EC_PEM });
    assert.equal(verified(es, jwt.sign(claims(), ec.privateKey, { algorithm: 'ES256', noTimestamp: true })).username, 'alice');
    const ps = verifierFor({ algorithms: ['PS256'] });
    assert.equal(verified(ps, jwt.sign(claims(), rsa.privateKey, { algorithm: 'PS256', noTimestamp: true })).username, 'alice');
    assert.equal(reason(ps, signRs256(claims())), 'invalid token: algorithm not allowed');
  });
});

describe('verify: claims', () => {
  const verifier = verifierFor();

  it('gives the expiry in ms', () => {
    assert.equal(verified(verifier, signRs256(claims({ exp: NOW_S + 90 }))).expiresAt, NOW + 90_000);
  });

  it('takes the username from the first non-empty string claim of the list', () => {
    assert.equal(verified(verifier, signRs256(claims({ client_id: 'app' }))).username, 'alice');
    const { sub: _, ...noSub } = claims({ client_id: 'app' });
    assert.equal(verified(verifier, signRs256(noSub)).username, 'app');
    assert.equal(verified(verifier, signRs256(claims({ sub: 42, client_id: 'app' }))).username, 'app');
    assert.equal(verified(verifier, signRs256(claims({ sub: '', client_id: 'app' }))).username, 'app');
    const anonymous = signRs256({ exp: NOW_S + 60, scope: 'rabbitmq.read:prod/q' });
    assert.equal(reason(verifier, anonymous), 'token has no username claim (sub, client_id)');
    const custom = verifierFor({ usernameClaims: ['preferred_username'] });
    assert.equal(verified(custom, signRs256(claims({ preferred_username: 'Alice A.' }))).username, 'Alice A.');
  });

  it('reads scope as a space-separated string or as an array', () => {
    const text = verified(verifier, signRs256(claims({ scope: 'rabbitmq.read:prod/a  rabbitmq.write:prod/b openid' })));
    assert.deepEqual(text.scopes, ['read:prod/a', 'write:prod/b']);
    const list = verified(verifier, signRs256(claims({ scope: ['rabbitmq.read:prod/a', 7, 'rabbitmq.write:prod/b', null] })));
    assert.deepEqual(list.scopes, ['read:prod/a', 'write:prod/b']);
    assert.deepEqual(verified(verifier, signRs256(claims({ scope: { read: true } }))).scopes, []);
    const { scope: _, ...noScope } = claims();
    assert.deepEqual(verified(verifier, signRs256(noScope)).scopes, []);
  });

  it('keeps only prefixed scopes, prefix removed, and ignores scopes of other resource servers', () => {
    const token = signRs256(claims({ scope: 'rabbitmq.read:prod/a other.read:prod/b read:prod/c rabbitmqread:prod/d' }));
    assert.deepEqual(verified(verifier, token).scopes, ['read:prod/a']);
    assert.deepEqual(verified(verifierFor({ scopePrefix: '' }), token).scopes, [
      'rabbitmq.read:prod/a',
      'other.read:prod/b',
      'read:prod/c',
      'rabbitmqread:prod/d',
    ]);
  });

  it('turns tag: scopes into tags, not scopes', () => {
    const scope = 'rabbitmq.tag:monitoring rabbitmq.tag:administrator rabbitmq.tag: tag:ignored rabbitmq.read:prod/q';
    const token = signRs256(claims({ scope }));
    const v = verified(verifier, token);
    assert.deepEqual(v.tags, ['monitoring', 'administrator']);
    assert.deepEqual(v.scopes, ['read:prod/q']);
  });

  it('expands {vhost} and string claims such as {sub}; drops scopes it cannot expand', () => {
    const token = signRs256(
      claims({
        scope: [
          'rabbitmq.write:*/x-{vhost}-*/u-{sub}-*',
          'rabbitmq.read:{vhost}/{team}',
          'rabbitmq.read:prod/{nope}',
          'rabbitmq.read:prod/{exp}',
          'rabbitmq.read:prod/a}b',
        ],
        team: 'blue',
      }),
    );
    assert.deepEqual(verified(verifier, token, 'prod').scopes, ['write:*/x-prod-*/u-alice-*', 'read:prod/blue']);
    assert.deepEqual(verified(verifier, token, '/').scopes, ['write:*/x-%2F-*/u-alice-*', 'read:%2F/blue']);
  });

  it('inserts claim values as literals: a hostile sub cannot widen a scope', async () => {
    const token = signRs256(claims({ sub: '*', scope: 'rabbitmq.read:prod/amq.topic/user.{sub}' }));
    const { scopes } = verified(verifier, token);
    assert.deepEqual(scopes, ['read:prod/amq.topic/user.%2A']);
    const authority = createJwtAuthority({ now: () => NOW });
    const principal = { username: '*', vhost: 'prod', tags: [], authenticatedBy: 'jwt' as const, scopes, expiresAt: NOW + 1000 };
    const check = (routingKey: string) =>
      authority.authorize(principal, { resource: 'topic', name: 'amq.topic', permission: 'read', routingKey });
    assert.equal((await check('user.*')).ok, true);
    assert.equal((await check('user.bob')).ok, false);
  });
});

describe('expandScope', () => {
  it('leaves scopes without variables alone and refuses stray braces', () => {
    assert.equal(expandScope('read:prod/q', 'prod', {}), 'read:prod/q');
    assert.equal(expandScope('read:prod/{', 'prod', {}), undefined);
    assert.equal(expandScope('read:prod/}{vhost}', 'prod', {}), undefined);
    assert.equal(expandScope('read:prod/{{vhost}}', 'prod', {}), undefined);
    assert.equal(expandScope('read:{vhost}/a b', 'v h', {}), 'read:v%20h/a b');
    assert.equal(expandScope('read:{vhost}/q', 'prod', { vhost: 'other' }), 'read:prod/q', '{vhost} is the connection vhost, not a claim');
  });
});

describe('looksLikeJwt', () => {
  it('recognises signed and unsigned tokens', () => {
    assert.equal(looksLikeJwt(signRs256(claims())), true);
    assert.equal(looksLikeJwt(handMade({ alg: 'none' }, claims())), true);
  });

  it('rejects passwords and near misses', () => {
    const header = b64({ alg: 'RS256' });
    const payload = b64({});
    const misses = [
      'guest',
      'p4ss.w0rd.x',
      'a.b.c',
      '',
      '..',
      `${b64({ typ: 'JWT' })}.${payload}.sig`,
      `${b64({ alg: 1 })}.${payload}.sig`,
      `${header}.${payload}`,
      `${header}.${payload}.s.x`,
      `${header}..sig`,
    ];
    for (const s of misses) {
      assert.equal(looksLikeJwt(s), false, s);
    }
  });
});

describe('jwt authenticator', () => {
  const authenticator = createJwtAuthenticator(verifierFor());
  const request = (over: Partial<ConnectRequest> = {}): ConnectRequest => ({
    login: 'someone-else',
    passcode: undefined,
    vhost: 'prod',
    remoteAddress: '127.0.0.1',
    ...over,
  });

  it('is named jwt', () => {
    assert.equal(authenticator.name, 'jwt');
  });

  it('passes on credentials that are not a token', async () => {
    assert.equal(await authenticator.authenticate(request({ passcode: 'guest' })), undefined);
    assert.equal(await authenticator.authenticate(request()), undefined);
    assert.equal(await authenticator.authenticate(request({ login: undefined })), undefined);
  });

  it('builds the principal from a token in the passcode, ignoring login', async () => {
    const token = signRs256(claims({ scope: 'rabbitmq.read:{vhost}/q rabbitmq.tag:monitoring' }));
    assert.deepEqual(await authenticator.authenticate(request({ passcode: token })), {
      ok: true,
      value: {
        username: 'alice',
        vhost: 'prod',
        tags: ['monitoring'],
        authenticatedBy: 'jwt',
        scopes: ['read:prod/q'],
        expiresAt: (NOW_S + 600) * 1000,
      },
    });
  });

  it('prefers the connection bearer token over the passcode', async () => {
    const passcode = signRs256(claims({ sub: 'from-passcode' }));
    const bearerToken = signRs256(claims({ sub: 'from-bearer' }));
    const decision = await authenticator.authenticate(request({ passcode, bearerToken }));
    assert.equal(decision?.ok && decision.value.username, 'from-bearer');
    const withPassword = await authenticator.authenticate(request({ passcode: 'guest', bearerToken }));
    assert.equal(withPassword?.ok && withPassword.value.username, 'from-bearer');
  });

  it('refuses a bad token with the reason, never passing it on as a password', async () => {
    const expired = signRs256(claims({ exp: NOW_S - 1 }));
    assert.deepEqual(await authenticator.authenticate(request({ passcode: expired })), { ok: false, reason: 'token expired' });
    const forged = signRs256(claims(), otherRsa.privateKey);
    assert.deepEqual(await authenticator.authenticate(request({ passcode: forged })), {
      ok: false,
      reason: 'invalid token: bad signature',
    });
    assert.deepEqual(await authenticator.authenticate(request({ bearerToken: 'not-a-token', passcode: 'guest' })), {
      ok: false,
      reason: 'invalid token: malformed',
    });
    const unsigned = handMade({ alg: 'none' }, claims());
    assert.deepEqual(await authenticator.authenticate(request({ passcode: unsigned })), {
      ok: false,
      reason: 'invalid token: algorithm not allowed',
    });
  });

  it('gives the jwt authority what it needs to decide', async () => {
    const token = signRs256(claims({ scope: 'rabbitmq.read:prod/feed/user_{sub} rabbitmq.read:prod/feed' }));
    const decision = await authenticator.authenticate(request({ passcode: token }));
    assert.ok(decision?.ok);
    const authority = createJwtAuthority({ now: () => NOW });
    assert.equal((await authority.checkVhost(decision.value, '127.0.0.1')).ok, true);
    const read = (routingKey: string) =>
      authority.authorize(decision.value, { resource: 'topic', name: 'feed', permission: 'read', routingKey });
    assert.equal((await read('user_alice')).ok, true);
    assert.equal((await read('user_bob')).ok, false);
    assert.equal((await read('#')).ok, false);
  });
});
