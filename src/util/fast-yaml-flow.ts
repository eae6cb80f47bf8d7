// Flow collections for the fast YAML parser: `[a, "b", {c: d}]`, possibly over several lines.
import { escapeAt, giveUp, resolvePlain, type FastYamlOptions, type RepeatedKey } from './fast-yaml-scalars.js';

// Where a quoted scalar's ordinary characters end.
const DOUBLE_STOP = /["\\\n]/g;
const SINGLE_STOP = /['\n]/g;

// Flow collections ([a, "b", {c: d}]), possibly over several lines.
export class FlowParser {
  constructor(
    private readonly s: string,
    public pos: number,
    private readonly opts: FastYamlOptions,
    private readonly repeated: RepeatedKey[],
    private readonly lineNo: number,
    // Continuation lines must be indented more than this.
    private readonly parent: number,
    // How many more collections may nest.
    private room: number,
  ) {}

  // Skips white space, line breaks and comments; checks continuation lines' indentation.
  ws(): void {
    for (;;) {
      const c = this.s[this.pos];
      if (c === ' ' || c === '\t') this.pos++;
      else if (c === '\n') {
        this.pos++;
        let ind = 0;
        while (this.s[this.pos + ind] === ' ') ind++;
        const next = this.s[this.pos + ind];
        if (next !== '\n' && next !== undefined && next !== '#' && ind <= this.parent) giveUp();
        if (this.s.startsWith('---', this.pos) || this.s.startsWith('...', this.pos)) giveUp();
      } else if (c === '#' && (this.pos === 0 || /[ \t\n]/.test(this.s[this.pos - 1]!))) {
        while (this.pos < this.s.length && this.s[this.pos] !== '\n') this.pos++;
      } else return;
    }
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.pos];
    if (c === undefined) giveUp();
    if (c === '[') return this.seq();
    if (c === '{') return this.map();
    if (c === '"' || c === "'") return this.quoted();
    if ('&*!%@`|>#,]}?'.includes(c!)) giveUp();
    this.plainStart();
    return resolvePlain(this.plain(), this.opts.intAsBigInt === true, this.opts.serdeNumbers === true);
  }

  // `-`, `?` or `:` followed by a space (or a flow indicator) cannot start a plain scalar.
  private plainStart(): void {
    const c = this.s[this.pos];
    if ((c === '-' || c === '?' || c === ':') && /^[ \t\n,[\]{}]?$/.test(this.s[this.pos + 1] ?? '')) giveUp();
  }

  private plain(): string {
    const st = this.pos;
    for (;;) {
      const c = this.s[this.pos];
      if (c === undefined || c === ',' || c === ']' || c === '}' || c === '[' || c === '{' || c === '\n') break;
      if (c === ':' && /[ \t\n,\]}]/.test(this.s[this.pos + 1] ?? ',')) break;
      if (c === '#' && /[ \t]/.test(this.s[this.pos - 1] ?? '')) break;
      this.pos++;
    }
    const t = this.s.slice(st, this.pos).trim();
    if (t === '') giveUp();
    if (this.s[this.pos] === '\n') {
      // A plain scalar folding over a line break in a flow collection: left to npm `yaml`.
      let k = this.pos;
      while (/[ \t\n]/.test(this.s[k] ?? '')) k++;
      const n = this.s[k];
      if (!(n === undefined || n === ',' || n === ']' || n === '}' || n === '#' || n === ':')) giveUp();
    }
    return t;
  }

  private quoted(): string {
    const s = this.s;
    const q = s[this.pos]!;
    // Runs of ordinary characters are sliced, not copied one by one.
    const stop = q === '"' ? DOUBLE_STOP : SINGLE_STOP;
    let out = '';
    // Length of `out` up to the last escape: folding never trims what an escape produced.
    let kept = 0;
    let j = this.pos + 1;
    for (;;) {
      stop.lastIndex = j;
      const at = stop.exec(s)?.index;
      if (at === undefined) giveUp();
      out += s.slice(j, at);
      j = at!;
      const ch = s[j];
      if (ch === '\n') {
        // Fold: trailing white space before the break and leading white space after it go;
        // one break is a space, each empty line a newline.
        // Escaped white space (`\ `, `\t`) before the break stays.
        let end = out.length;
        while (end > kept && (out[end - 1] === ' ' || out[end - 1] === '\t')) end--;
        out = out.slice(0, end);
        let breaks = 0;
        while (s[j] === '\n' || s[j] === ' ' || s[j] === '\t') {
          if (s[j] === '\n') {
            breaks++;
            if (s.startsWith('---', j + 1) || s.startsWith('...', j + 1)) giveUp();
          }
          j++;
        }
        out += breaks > 1 ? '\n'.repeat(breaks - 1) : ' ';
        continue;
      }
      if (ch === "'") {
        if (s[j + 1] === "'") {
          out += "'";
          j += 2;
          continue;
        }
        this.pos = j + 1;
        return out;
      }
      if (ch === '\\') {
        if (s[j + 1] === '\n') {
          // An escaped line break joins the lines without a space.
          j += 2;
          while (s[j] === ' ' || s[j] === '\t') j++;
          continue;
        }
        const [x, len] = escapeAt(s, j);
        out += x;
        kept = out.length;
        j += len;
        continue;
      }
      // The closing double quote.
      this.pos = j + 1;
      return out;
    }
  }

  private seq(): unknown[] {
    if (--this.room < 0) giveUp();
    this.pos++;
    const out: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.pos] === ']') {
        this.pos++;
        this.room++;
        return out;
      }
      const v = this.value();
      this.ws();
      if (this.s[this.pos] === ':') giveUp(); // a single-pair mapping inside a sequence
      out.push(v);
      if (this.s[this.pos] === ',') this.pos++;
      else if (this.s[this.pos] !== ']') giveUp();
    }
  }

  private map(): unknown {
    if (--this.room < 0) giveUp();
    this.pos++;
    const m = this.opts.mapAsMap ? new Map<unknown, unknown>() : undefined;
    const o: Record<string, unknown> = {};
    for (;;) {
      this.ws();
      if (this.s[this.pos] === '}') {
        this.pos++;
        this.room++;
        return m ?? o;
      }
      const c = this.s[this.pos];
      // A key starting with an indicator (`?`, a collection, an anchor, alias, tag, comment...).
      if (c === undefined || '?[{#&*!%@`|>,]'.includes(c)) giveUp();
      if (c !== '"' && c !== "'") this.plainStart();
      const quoted = c === '"' || c === "'";
      const raw = quoted ? this.quoted() : this.plain();
      // A merge key (and, for serde_yaml's data, a quoted "<<" too): left to npm `yaml`'s path.
      if (raw === '<<') giveUp();
      const key = quoted ? raw : resolvePlain(raw, this.opts.intAsBigInt === true, this.opts.serdeNumbers === true);
      if (!m && (typeof key !== 'string' || key === '__proto__')) giveUp();
      this.ws();
      let v: unknown = null;
      if (this.s[this.pos] === ':') {
        this.pos++;
        this.ws();
        if (this.s[this.pos] !== ',' && this.s[this.pos] !== '}') v = this.value();
      } else giveUp();
      if (m) {
        if (m.has(key)) this.repeated.push({ line: this.lineNo, col: 1, key: raw });
        m.set(key, v);
      } else {
        if (Object.prototype.hasOwnProperty.call(o, key as string)) this.repeated.push({ line: this.lineNo, col: 1, key: raw });
        o[key as string] = v;
      }
      this.ws();
      if (this.s[this.pos] === ',') this.pos++;
      else if (this.s[this.pos] !== '}') giveUp();
    }
  }
}
