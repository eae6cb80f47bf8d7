// Linux CPU lists (`0-47,96-143`), as sysfs prints them and systemd's AllowedCPUs= reads them.
import { InputError } from '../util/errors.js';

// Linux's NR_CPUS is at most 8192 today; a list naming a CPU past this bound is not a real host.
export const MAX_CPU = 65535;

// `where` names the file (or flag) the list came from, for the error.
export function parseCpuList(text: string, where = 'CPU list'): number[] {
  const out = new Set<number>();
  const bad = (why: string) =>
    new InputError(`${where}: ${JSON.stringify(text.trim().slice(0, 80))} is not a CPU list (${why})`, 'expected e.g. 0-47,96-143 as the kernel prints it');
  for (const part of text.trim().split(',')) {
    const p = part.trim();
    if (!p) continue;
    // a, a-b, a-b:step, and the kernel's a-b:used/group (the first `used` CPUs of each group).
    const m = /^(\d{1,6})(?:-(\d{1,6})(?::(\d{1,6})(?:\/(\d{1,6}))?)?)?$/.exec(p);
    if (!m) throw bad(JSON.stringify(p.slice(0, 40)));
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw bad(`range ${p} runs backwards`);
    if (b > MAX_CPU) throw bad(`CPU ${b} is beyond ${MAX_CPU}`);
    const used = m[4] === undefined ? 1 : Number(m[3]);
    const group = m[4] === undefined ? (m[3] === undefined ? 1 : Number(m[3])) : Number(m[4]);
    if (group < 1 || used < 1 || used > group) throw bad(`bad step or group in ${p}`);
    for (let i = a; i <= b; i++) if ((i - a) % group < used) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

export function formatCpuList(cpus: readonly number[]): string {
  const s = [...new Set(cpus)].sort((x, y) => x - y);
  const parts: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(j === i ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
