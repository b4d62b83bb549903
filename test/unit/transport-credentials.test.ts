// What a transport takes from the HTTP upgrade for auth: the client IP as RabbitMQ reports it and
// a bearer token from the Authorization header or the access_token query parameter.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearerTokenOf, clientIp } from '../../broker/src/transport/credentials.js';

describe('clientIp', () => {
  it('unwraps IPv4-mapped IPv6 addresses and leaves the rest', () => {
    assert.equal(clientIp('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(clientIp('127.0.0.1'), '127.0.0.1');
    assert.equal(clientIp('::1'), '::1');
    assert.equal(clientIp('::ffff:abcd'), '::ffff:abcd');
    assert.equal(clientIp(undefined), 'unknown');
  });
});

describe('bearerTokenOf', () => {
  const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig-_nature';
  it('reads Authorization: Bearer (any case, RFC 6750 token68 characters)', () => {
    assert.equal(bearerTokenOf({ authorization: `Bearer ${JWT}` }, '/ws'), JWT);
    assert.equal(bearerTokenOf({ authorization: `bearer  ${JWT} ` }, '/ws'), JWT);
  });
  it('reads ?access_token= when there is no usable header', () => {
    assert.equal(bearerTokenOf({}, `/ws?access_token=${JWT}&x=1`), JWT);
    assert.equal(bearerTokenOf({ authorization: 'Basic Z3Vlc3Q6Z3Vlc3Q=' }, `/ws?access_token=${JWT}`), JWT);
  });
  it('the header wins over the query parameter', () => {
    assert.equal(bearerTokenOf({ authorization: 'Bearer header.token.x' }, '/ws?access_token=query.token.y'), 'header.token.x');
  });
  it('nothing, an empty parameter, or a malformed header give undefined', () => {
    assert.equal(bearerTokenOf({}, '/ws'), undefined);
    assert.equal(bearerTokenOf({}, '/ws?access_token='), undefined);
    assert.equal(bearerTokenOf({ authorization: 'Bearer two words' }, undefined), undefined);
    assert.equal(bearerTokenOf({ authorization: 'Bearer' }, undefined), undefined);
  });
});
