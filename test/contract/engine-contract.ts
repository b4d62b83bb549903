// The one engine contract: AMQP 0-9-1 behaviour as RabbitMQ shows it, which every Engine must
// reproduce. Not a test file itself: a target (memory engine, AMQP engine against a real RabbitMQ)
// calls runEngineContract from its own *.test.ts. The cases only use uniquely named queues, the
// target's pre-declared exchanges and per-test routing keys, and clean up after themselves, so they
// can run against a RabbitMQ shared with other tests. Behaviour observable on one engine only
// belongs in that engine's own tests.

import { after, before, describe } from 'node:test';
import type { ContractEnv } from './contract-helpers.js';
import { deliveryContract } from './contract-delivery.js';
import { messageContract } from './contract-messages.js';
import { queueContract } from './contract-queues.js';
import { routingContract } from './contract-routing.js';

export type { ContractEnv } from './contract-helpers.js';

export interface ContractTarget {
  readonly name: string;
  /** Called once before the suite; `cleanup` once after it. */
  create(): Promise<ContractEnv>;
}

/** Registers the contract's describe()/it() blocks with node:test. */
export function runEngineContract(target: ContractTarget): void {
  describe(`engine contract: ${target.name}`, () => {
    let env: ContractEnv | undefined;
    const current = (): ContractEnv => {
      if (env === undefined) throw new Error(`contract target ${target.name} was not created`);
      return env;
    };
    before(async () => {
      env = await target.create();
    });
    after(async () => {
      await env?.cleanup();
    });
    routingContract(current);
    queueContract(current);
    deliveryContract(current);
    messageContract(current);
  });
}
