// Runs the shared engine contract against the embedded memory engine: once on the default vhost
// with the amq.* exchanges, once on another vhost with configured exchanges.

import { pino } from 'pino';
import { MemoryEngine } from '../../broker/src/engine/memory/memory-engine.js';
import { runEngineContract } from '../contract/engine-contract.js';

const log = pino({ level: 'silent' });

runEngineContract({
  name: 'memory',
  async create() {
    const engine = new MemoryEngine({}, log);
    await engine.start();
    return {
      engine,
      vhost: '/',
      topicExchange: 'amq.topic',
      directExchange: 'amq.direct',
      fanoutExchange: 'amq.fanout',
      cleanup: () => engine.stop(),
    };
  },
});

runEngineContract({
  name: 'memory, vhost dev, configured exchanges',
  async create() {
    const engine = new MemoryEngine(
      {
        vhosts: ['/', 'dev'],
        exchanges: [
          { name: 'feed', type: 'topic', vhost: 'dev' },
          { name: 'direct-x', type: 'direct' },
          { name: 'fan-x', type: 'fanout' },
        ],
        maxQueueMessages: 1_000,
      },
      log,
    );
    await engine.start();
    return {
      engine,
      vhost: 'dev',
      topicExchange: 'feed',
      directExchange: 'direct-x',
      fanoutExchange: 'fan-x',
      cleanup: () => engine.stop(),
    };
  },
});
