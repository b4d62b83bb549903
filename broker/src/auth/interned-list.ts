// Equal lists of strings, shared. Every session opened with one token (or with tokens that grant
// the same scopes) then holds the same array, and what is derived from it per array (the parsed
// scopes, scopes.ts) is built once rather than once per connection: about 3 KiB of heap each in
// the connections benchmark (docs/benchmarks.md).

/** Bounds the table: past it the table starts afresh (arrays already handed out stay valid). */
const MAX_LISTS = 10_000;

let lists = new Map<string, readonly string[]>();

export function internList(list: readonly string[]): readonly string[] {
  if (list.length === 0) return EMPTY;
  const key = JSON.stringify(list);
  const known = lists.get(key);
  if (known !== undefined) return known;
  if (lists.size >= MAX_LISTS) lists = new Map();
  const frozen = Object.freeze([...list]);
  lists.set(key, frozen);
  return frozen;
}

const EMPTY: readonly string[] = Object.freeze([]);
