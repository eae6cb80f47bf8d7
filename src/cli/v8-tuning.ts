// V8's optimising compiler tuned for a short-lived CLI. By default V8 hands a function to TurboFan
// after a few hundred calls; in a process that lives ~150 ms on a small machine, the background
// compiles compete with the main thread for the CPU and their results arrive when the work is
// nearly done (and are sometimes thrown away on a deopt). Raising the threshold keeps the
// interpreter and the baseline compiler doing the short jobs while long loops (a 5,000-step
// render) still get optimised. Measured per Node line in docs/performance.md; a flag is set only
// on the V8 that knows it (an unknown flag makes V8 print an error).
export function tierUpFlags(v8Version: string): string | undefined {
  // Only the V8 lines measured (and known to have the flag): Node 20's and Node 22's.
  const line = /^(\d+\.\d+)\./.exec(v8Version)?.[1];
  // Node 20 (V8 11.3): the profiler's budget, in bytes of bytecode run (default 132 KB).
  if (line === '11.3') return '--interrupt-budget=1000000';
  // Node 22 (V8 12.4): calls before TurboFan (default 3,000; Maglev still tiers up early).
  if (line === '12.4') return '--invocation-count-for-turbofan=30000';
  // Node 24 (V8 13.6) measured no gain; other lines are left at V8's defaults.
  return undefined;
}
