// Virtual delivery tags across channel generations (broker/src/engine/amqp/delivery-tags.ts): the
// session above sees one increasing sequence; settlements of a lost channel's tags are dropped.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeliveryTags } from '../../broker/src/engine/amqp/delivery-tags.js';

describe('DeliveryTags', () => {
  test('the first channel: virtual = channel tag, both ways', () => {
    const tags = new DeliveryTags();
    assert.equal(tags.toVirtual(1), 1);
    assert.equal(tags.toVirtual(2), 2);
    assert.equal(tags.toChannel(2), 2);
    assert.equal(tags.toChannel(1), 1);
  });

  test('after a restore, the new channel continues above the highest tag handed out', () => {
    const tags = new DeliveryTags();
    for (let t = 1; t <= 5; t++) tags.toVirtual(t);
    tags.newGeneration();
    assert.equal(tags.toVirtual(1), 6);
    assert.equal(tags.toVirtual(2), 7);
    assert.equal(tags.toChannel(6), 1);
    assert.equal(tags.toChannel(7), 2, 'a multiple settlement of 7 acks channel tags 1..2: exactly the new ones');
  });

  test('tags of an earlier generation map to nothing (dropped: RabbitMQ redelivers them)', () => {
    const tags = new DeliveryTags();
    tags.toVirtual(1);
    tags.toVirtual(2);
    tags.newGeneration();
    tags.toVirtual(1);
    assert.equal(tags.toChannel(1), undefined);
    assert.equal(tags.toChannel(2), undefined);
    assert.equal(tags.toChannel(3), 1);
  });

  test('a generation that delivered nothing keeps the base; tags never repeat', () => {
    const tags = new DeliveryTags();
    tags.toVirtual(1);
    tags.toVirtual(2);
    tags.toVirtual(3);
    tags.newGeneration();
    tags.newGeneration();
    assert.equal(tags.toVirtual(1), 4);
  });

  test('nothing delivered before the first restore: base 0', () => {
    const tags = new DeliveryTags();
    tags.newGeneration();
    assert.equal(tags.toVirtual(1), 1);
    assert.equal(tags.toChannel(1), 1);
  });

  test('non-integer and negative tags map to nothing', () => {
    const tags = new DeliveryTags();
    tags.toVirtual(1);
    for (const bad of [-1, 1.5, Number.NaN]) assert.equal(tags.toChannel(bad), undefined, String(bad));
  });

  test('tag 0 stays 0 in every generation (ack multiple of 0 = everything outstanding on this channel)', () => {
    const tags = new DeliveryTags();
    tags.toVirtual(1);
    assert.equal(tags.toChannel(0), 0);
    tags.newGeneration();
    assert.equal(tags.toChannel(0), 0);
  });

  test('property: across any generations, virtual tags strictly increase and map back to their channel tag', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 10 }), (deliveriesPerChannel) => {
        const tags = new DeliveryTags();
        let last = 0;
        const generations: number[][] = [];
        for (const count of deliveriesPerChannel) {
          tags.newGeneration();
          const seen: number[] = [];
          for (let channelTag = 1; channelTag <= count; channelTag++) {
            const v = tags.toVirtual(channelTag);
            assert.ok(v > last, `virtual ${v} after ${last}`);
            last = v;
            seen.push(v);
            assert.equal(tags.toChannel(v), channelTag);
          }
          generations.push(seen);
        }
        // Only the last generation's tags are settleable.
        for (const seen of generations.slice(0, -1)) for (const v of seen) assert.equal(tags.toChannel(v), undefined);
      }),
    );
  });
});
