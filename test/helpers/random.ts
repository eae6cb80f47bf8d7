// A small deterministic random generator for generated test inputs: a 32-bit linear congruential
// generator computed with Math.imul (a plain `seed * 1103515245` loses its low bits in a double,
// and `seed % k` of those is nearly constant), returning its high bits.
export function randomInts(seed: number): (k: number) => number {
  let s = seed >>> 0;
  return (k: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % k;
  };
}

// The same generator as floats in [0, 1).
export function randomFloats(seed: number): () => number {
  const next = randomInts(seed);
  return () => next(0x1000000) / 0x1000000;
}
