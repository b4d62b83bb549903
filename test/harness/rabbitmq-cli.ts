// Starts or stops one detached RabbitMQ node for a whole test run (booting takes seconds, so
// test/run.sh does it once and every test file attaches through useRabbit()).
//   tsx test/harness/rabbitmq-cli.ts start <state-file>   → prints `export THUMPER_TEST_RABBIT='…'`
//   tsx test/harness/rabbitmq-cli.ts stop <state-file>

import { readFile, rm, writeFile } from 'node:fs/promises';
import { startRabbitNode, stopNode, type RabbitNodeState } from './rabbitmq.js';

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, stateFile] = argv;
  if ((command !== 'start' && command !== 'stop') || stateFile === undefined) {
    process.stderr.write('usage: rabbitmq-cli.ts start|stop <state-file>\n');
    return 2;
  }
  if (command === 'start') {
    const node = await startRabbitNode({ detach: true });
    const json = JSON.stringify(node.state);
    await writeFile(stateFile, `${json}\n`);
    process.stderr.write(`RabbitMQ ${node.state.nodeName} (pid ${node.state.pid}) at ${node.amqpUrl}\n`);
    process.stdout.write(`export THUMPER_TEST_RABBIT=${shellQuote(json)}\n`);
    return 0;
  }
  const state = JSON.parse(await readFile(stateFile, 'utf8')) as RabbitNodeState;
  await stopNode(state);
  await rm(stateFile, { force: true });
  process.stderr.write(`RabbitMQ ${state.nodeName} stopped\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
