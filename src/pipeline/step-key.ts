// The rules for a step `key` (and its legacy aliases `id`, `identifier`), shared by the zod model
// and the quick check (this module does not load zod). The agent interpolates environment
// variables into a pipeline before it uploads it, keys included (`key: "test_${TRIPLET?}"`), so a
// key is judged after its interpolations are removed: what is left must be made of the characters
// Buildkite allows, at most 100 of them, and must not look like a UUID.

const KEY_CHARS = /^[a-zA-Z0-9_\-:${}.,]*$/;
export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const MAX_KEY_LENGTH = 100;

// Removes what the agent replaces before upload: `$NAME`, and `${...}` in all its forms (`${NAME}`,
// `${NAME-x}`, `${NAME:-x}`, `${NAME?}`, `${NAME?msg}`, `${NAME:?msg}`, `${NAME:1:2}`, defaults that
// hold further `${...}`). `$$` is the agent's escape for one literal `$`, which stays. An unclosed
// `${` is left as it is (the agent refuses it on upload).
export function withoutInterpolations(s: string): { rest: string; interpolated: boolean } {
  let rest = '';
  let interpolated = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '$') {
      rest += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      rest += '$';
      i += 2;
    } else if (next === '{') {
      let depth = 0;
      let j = i + 1;
      for (; j < s.length; j++) {
        if (s[j] === '{') depth++;
        else if (s[j] === '}' && --depth === 0) break;
      }
      if (j >= s.length) {
        rest += s.slice(i);
        break;
      }
      interpolated = true;
      i = j + 1;
    } else if (next !== undefined && /[A-Za-z_]/.test(next)) {
      let j = i + 2;
      while (j < s.length && /[A-Za-z0-9_]/.test(s[j]!)) j++;
      interpolated = true;
      i = j;
    } else {
      rest += c;
      i++;
    }
  }
  return { rest, interpolated };
}

// What is wrong with a step key, or undefined when Buildkite will take it.
export function stepKeyProblem(key: string): string | undefined {
  const { rest, interpolated } = withoutInterpolations(key);
  if (rest === '') return interpolated ? undefined : 'a step key must not be empty';
  if (rest.length > MAX_KEY_LENGTH) return `a step key is at most ${MAX_KEY_LENGTH} characters${interpolated ? ' (not counting $VARIABLES)' : ''}`;
  if (!KEY_CHARS.test(rest)) return 'a step key may only contain letters, digits and _ - : $ { } . , (and $VARIABLES the agent interpolates)';
  if (UUID_RE.test(rest)) return 'a step key must not look like a UUID (Buildkite reserves those for step ids)';
  return undefined;
}
