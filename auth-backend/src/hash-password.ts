// Prints a bcrypt hash for a password read from stdin, for the rules file's `password_hash`:
//   printf '%s' 'my secret' | npx tsx auth-backend/src/hash-password.ts [--cost 12]
// The password never appears on the command line, where `ps` and shell history would show it.

import { hashSync, truncates } from 'bcryptjs';

const DEFAULT_COST = 10;

function parseCost(argv: readonly string[]): number | string {
  if (argv.length === 0) return DEFAULT_COST;
  if (argv.length !== 2 || argv[0] !== '--cost') return 'usage: hash-password [--cost <4-31>]  (password on stdin)';
  const cost = Number(argv[1]);
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) return `--cost: expected an integer from 4 to 31, got "${argv[1]}"`;
  return cost;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password (then Enter and Ctrl-D; it will be shown): ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // One trailing newline is how `echo` and the terminal end input, not part of the password.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function main(): Promise<void> {
  const cost = parseCost(process.argv.slice(2));
  if (typeof cost === 'string') {
    process.stderr.write(`${cost}\n`);
    process.exit(2);
  }
  const password = await readStdin();
  if (password === '') {
    process.stderr.write('hash-password: empty password\n');
    process.exit(2);
  }
  if (truncates(password)) process.stderr.write('hash-password: warning: bcrypt uses only the first 72 bytes of this password\n');
  process.stdout.write(`${hashSync(password, cost)}\n`);
}

void main();
