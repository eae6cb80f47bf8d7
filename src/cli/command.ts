// Small helpers shared by the command files under src/cli/<group>/: commander wiring only.

// For a repeatable option: each use appends its value.
export const collect = (v: string, prev: string[]): string[] => [...prev, v];

// A comma-separated list, items trimmed, empty items dropped.
export const list = (v: string | undefined): string[] | undefined =>
  v
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);

// "1 job", "2 jobs".
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
