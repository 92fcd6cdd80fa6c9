/**
 * Keys of the network config that name one field twice. flannel decodes the config with Go's
 * encoding/json, which matches keys to struct fields case-insensitively (Unicode simple folding, so
 * "ſubnetLen" is SubnetLen too) and lets the last key win, except that a null leaves the earlier value
 * in place for a number or bool (and fails for an address field: flannel pkg/ip/ipnet.go).
 * `{"Network":…, "network":…}` or a key written twice therefore means what Go's rules make of it, which
 * JSON.parse (last key wins, null included) does not always agree with. weft refuses such a config,
 * naming the keys, instead of guessing: the top-level keys that name a config field, and every key
 * inside `Backend` (each backend's options are a Go struct too).
 */

/** Go's case folding for the keys that can name a field: lower case, and U+017F (ſ) is s. */
export function foldKey(key: string): string {
  return key.toLowerCase().replace(/\u017f/g, 's');
}

export interface DuplicateKeys {
  /** Where: '' for the top level, else the path of the object, e.g. 'Backend'. */
  readonly path: string;
  /** The keys as written (JSON escapes decoded), in document order. */
  readonly keys: readonly [string, string];
}

interface Frame {
  readonly isObject: boolean;
  readonly path: string;
  /** Whether duplicates in this object count (see the file comment). */
  readonly checked: 'known' | 'all' | 'none';
  readonly seen: Map<string, string>;
  expectKey: boolean;
  lastKey: string;
}

/**
 * The first object with two keys naming one field, in valid JSON `text` (JSON.parse accepted it);
 * `known` holds the folded names of the top-level fields. Linear, no recursion.
 */
export function findDuplicateKeys(text: string, known: ReadonlySet<string>): DuplicateKeys | null {
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack.at(-1);
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (top?.isObject && top.expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const folded = foldKey(key);
        top.expectKey = false;
        top.lastKey = key;
        const counts = top.checked === 'all' || (top.checked === 'known' && known.has(folded));
        const before = top.seen.get(folded);
        if (counts && before !== undefined) return { path: top.path, keys: [before, key] };
        top.seen.set(folded, key);
      }
      i = end;
    } else if (c === '{' || c === '[') {
      const path = !top
        ? ''
        : top.isObject
          ? top.path === ''
            ? top.lastKey
            : `${top.path}.${top.lastKey}`
          : `${top.path}[]`;
      const inBackend =
        top !== undefined &&
        (top.checked === 'all' || foldKey(path.split(/[.[]/)[0]!) === 'backend');
      stack.push({
        isObject: c === '{',
        path,
        checked: !top ? 'known' : inBackend ? 'all' : 'none',
        seen: new Map(),
        expectKey: c === '{',
        lastKey: '',
      });
    } else if (c === '}' || c === ']') stack.pop();
    else if (c === ',' && top?.isObject) top.expectKey = true;
  }
  return null;
}
