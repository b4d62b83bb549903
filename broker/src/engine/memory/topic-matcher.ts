// AMQP topic-exchange matching, as RabbitMQ's rabbit_exchange_type_topic does it: keys and patterns
// are split on `.` into words (the empty key is zero words, `a.` is `a` plus an empty word); in a
// pattern, a word that is exactly `*` matches one word (possibly empty) and `#` matches zero or more
// words. Anything else, including `a#` or `**`, is literal. Pure; checked against RabbitMQ 3.10.8.

/** A binding key split once at bind time, so routing only splits the message's key. */
export interface TopicPattern {
  readonly source: string;
  readonly words: readonly string[];
  /** false: no `*`/`#` word, so an exact key comparison decides. */
  readonly wildcard: boolean;
}

export function splitTopicKey(key: string): string[] {
  // rabbit_exchange_type_topic:split_topic_key(<<>>) -> [] — the empty key has no words.
  return key === '' ? [] : key.split('.');
}

export function compileTopicPattern(pattern: string): TopicPattern {
  const words = splitTopicKey(pattern);
  return { source: pattern, words, wildcard: words.some((w) => w === '*' || w === '#') };
}

/** Does a compiled pattern match the already-split routing key? */
export function matchTopicWords(pattern: readonly string[], key: readonly string[]): boolean {
  // Dynamic programming over (pattern word, key word) rather than backtracking, so patterns with
  // several `#` stay linear in pattern × key instead of exponential.
  // reachable[j]: the pattern prefix processed so far can consume exactly the first j key words.
  let reachable: boolean[] = new Array<boolean>(key.length + 1).fill(false);
  reachable[0] = true;
  for (const word of pattern) {
    const next: boolean[] = new Array<boolean>(key.length + 1).fill(false);
    if (word === '#') {
      let seen = false;
      for (let j = 0; j <= key.length; j++) {
        seen = seen || reachable[j] === true;
        next[j] = seen;
      }
    } else {
      for (let j = 0; j < key.length; j++) {
        if (reachable[j] === true && (word === '*' || word === key[j])) next[j + 1] = true;
      }
    }
    reachable = next;
  }
  return reachable[key.length] === true;
}

/** Convenience for one-off checks: `topicMatches('a.*.c', 'a.b.c')`. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  return matchTopicWords(splitTopicKey(pattern), splitTopicKey(routingKey));
}
