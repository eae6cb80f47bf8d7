// Shell-style globs over '/'-separated paths, matched in linear time (no regular expressions, no
// backtracking): the pattern becomes a small automaton whose set of live states advances one character
// at a time, so a match costs at most (path length x pattern length) steps whatever the pattern.
//
//   *      any run of characters within one segment (not '/')
//   ?      one character other than '/'
//   **/    zero or more whole segments ('**/x.py' matches 'x.py' and 'a/b/x.py')
//   **     elsewhere: any run of characters, '/' included ('results/**', 'a**b')
//   other  itself ('[', ']', '\' and '.' have no special meaning)
//
// A pattern without a wildcard matches the path itself and everything below it (a directory
// prefix: 'csrc' and 'csrc/' both match 'csrc/ops.cu'). An empty pattern matches nothing.

export interface GlobMatcher {
  readonly pattern: string;
  test(path: string): boolean;
}

const enum Kind {
  Char, // consumes `ch`
  One, // '?': consumes one character other than '/'
  Star, // '*': may be skipped; consumes characters other than '/' and stays
  Any, // '**': may be skipped; consumes any character and stays
  Segments, // '**/': consumes nothing; leads to the Any and Char '/' that follow it, or past both (zero segments)
}

interface Token {
  kind: Kind;
  ch: number;
}

const SLASH = 0x2f;

function tokenize(pattern: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < pattern.length;) {
    const c = pattern.codePointAt(i)!;
    const width = c > 0xffff ? 2 : 1;
    if (c === 0x2a /* * */) {
      if (pattern.charCodeAt(i + 1) === 0x2a) {
        let j = i + 2;
        while (pattern.charCodeAt(j) === 0x2a) j++; // '***' is '**'
        if (pattern.charCodeAt(j) === SLASH) {
          out.push({ kind: Kind.Segments, ch: 0 }, { kind: Kind.Any, ch: 0 }, { kind: Kind.Char, ch: SLASH });
          i = j + 1;
        } else {
          out.push({ kind: Kind.Any, ch: 0 });
          i = j;
        }
        continue;
      }
      // Consecutive stars of one kind are one star: the automaton stays small.
      if (out.at(-1)?.kind !== Kind.Star) out.push({ kind: Kind.Star, ch: 0 });
    } else if (c === 0x3f /* ? */) out.push({ kind: Kind.One, ch: 0 });
    else out.push({ kind: Kind.Char, ch: c });
    i += width;
  }
  return out;
}

// Follows the moves that consume nothing. They only go forward, so one pass in order is enough.
function close(tokens: Token[], live: Uint8Array): void {
  for (let i = 0; i < tokens.length; i++) {
    if (!live[i]) continue;
    const k = tokens[i]!.kind;
    if (k === Kind.Star || k === Kind.Any) live[i + 1] = 1;
    else if (k === Kind.Segments) {
      live[i + 1] = 1;
      live[i + 3] = 1;
    }
  }
}

function runAutomaton(tokens: Token[], path: string): boolean {
  const n = tokens.length;
  let live = new Uint8Array(n + 1);
  let next = new Uint8Array(n + 1);
  live[0] = 1;
  close(tokens, live);
  for (let p = 0; p < path.length;) {
    const c = path.codePointAt(p)!;
    p += c > 0xffff ? 2 : 1;
    next.fill(0);
    let any = false;
    for (let i = 0; i < n; i++) {
      if (!live[i]) continue;
      const t = tokens[i]!;
      switch (t.kind) {
        case Kind.Char:
          if (c === t.ch) next[i + 1] = 1;
          break;
        case Kind.One:
          if (c !== SLASH) next[i + 1] = 1;
          break;
        case Kind.Star:
          if (c !== SLASH) next[i] = 1;
          break;
        case Kind.Any:
          next[i] = 1;
          break;
      }
    }
    for (let i = 0; i <= n && !any; i++) any = next[i] === 1;
    if (!any) return false;
    close(tokens, next);
    [live, next] = [next, live];
  }
  return live[n] === 1;
}

export function compileGlob(pattern: string): GlobMatcher {
  if (pattern === '') return { pattern, test: () => false };
  if (!/[*?]/.test(pattern)) {
    const dir = pattern.endsWith('/') ? pattern : `${pattern}/`;
    const exact = pattern.endsWith('/') ? pattern.slice(0, -1) : pattern;
    return { pattern, test: (path) => path === exact || path.startsWith(dir) };
  }
  const tokens = tokenize(pattern);
  return { pattern, test: (path) => runAutomaton(tokens, path) };
}

export function globMatch(pattern: string, path: string): boolean {
  return compileGlob(pattern).test(path);
}

// One matcher for several globs (a list, or one comma-separated string as the flags take them; blanks
// around each are dropped): a path matches when any of them does.
export function compileGlobList(patterns: string | readonly string[]): GlobMatcher {
  const list = (typeof patterns === 'string' ? patterns.split(',') : patterns).map((g) => g.trim()).filter(Boolean);
  const ms = list.map(compileGlob);
  return { pattern: list.join(','), test: (path) => ms.some((m) => m.test(path)) };
}
