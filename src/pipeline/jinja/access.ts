// Attribute, item and slice access on template values, and the `loop` object of for loops.
import { EvalError } from './errors.js';
import { GroupTuple, JCallable, kindOf, Namespace, normKey, seqItems, toStr, typeName } from './values.js';

// The `loop` variable of a for loop.
export class LoopState {
  index0 = 0;
  private changedLast: unknown = Symbol('none');
  constructor(
    readonly items: unknown[],
    readonly depth: number,
    readonly recurse: ((items: unknown) => string) | null,
  ) {}
  // How `{{ loop }}` prints (minijinja's form), also inside a list or map: not a string.
  rawRepr(): string {
    return `<loop ${this.index0}/${this.items.length}>`;
  }
  get(attr: string): unknown {
    const n = this.items.length;
    const i = this.index0;
    switch (attr) {
      case 'index0':
        return i;
      case 'index':
        return i + 1;
      case 'revindex':
        return n - i;
      case 'revindex0':
        return n - i - 1;
      case 'first':
        return i === 0;
      case 'last':
        return i === n - 1;
      case 'length':
        return n;
      case 'depth':
        return this.depth;
      case 'depth0':
        return this.depth - 1;
      case 'previtem':
        return i > 0 ? this.items[i - 1] : undefined;
      case 'nextitem':
        return i < n - 1 ? this.items[i + 1] : undefined;
      case 'cycle':
        return new JCallable('cycle', ({ args }) => {
          if (!args.length) throw new EvalError('invalid argument: loop.cycle needs at least one item');
          return args[i % args.length];
        });
      case 'changed':
        return new JCallable('changed', ({ args }) => {
          const key = JSON.stringify(args.map(toStr));
          const changed = key !== this.changedLast;
          this.changedLast = key;
          return changed;
        });
      default:
        return undefined;
    }
  }
}

export function getAttr(obj: unknown, name: string): unknown {
  if (obj === undefined) throw new EvalError('undefined value');
  if (obj instanceof Map) return obj.get(name);
  if (obj instanceof Namespace) return obj.vars.get(name);
  if (obj instanceof LoopState) return obj.get(name);
  if (obj instanceof GroupTuple) return name === 'grouper' ? obj[0] : name === 'list' ? obj[1] : undefined;
  if (obj instanceof JCallable) return obj.attrs?.get(name);
  return undefined;
}

export function getItem(obj: unknown, key: unknown): unknown {
  if (obj === undefined) throw new EvalError('undefined value');
  if (obj instanceof Map) return obj.get(normKey(key));
  if (obj instanceof Namespace) return obj.vars.get(toStr(key));
  if (obj instanceof LoopState) return typeof key === 'string' ? obj.get(key) : undefined;
  const k = kindOf(obj);
  if ((k === 'seq' || k === 'string' || k === 'iterator') && typeof key === 'number') {
    const items = k === 'string' ? [...(obj as string)] : seqItems(obj);
    const i = key < 0 ? items.length + key : key;
    return i >= 0 && i < items.length ? items[i] : undefined;
  }
  return undefined;
}

function sliceIndex(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new EvalError(`invalid operation: slice ${what} must be an integer, got ${typeName(v)}`);
  return v;
}

export function slice(obj: unknown, start: unknown, stop: unknown, step: unknown): unknown {
  const k = kindOf(obj);
  if (k === 'undefined') throw new EvalError('undefined value');
  if (k === 'none') return [];
  if (k !== 'seq' && k !== 'string' && k !== 'iterator') throw new EvalError(`invalid operation: cannot slice ${typeName(obj)}`);
  const items = k === 'string' ? [...(obj as string)] : seqItems(obj);
  const n = items.length;
  const st = sliceIndex(step, 'step') ?? 1;
  if (st === 0) throw new EvalError('invalid operation: cannot slice by step size of 0');
  const norm = (i: number | undefined, dflt: number, lo: number, hi: number) => (i === undefined ? dflt : Math.min(Math.max(i < 0 ? i + n : i, lo), hi));
  const out: unknown[] = [];
  if (st > 0) {
    const a = norm(sliceIndex(start, 'start'), 0, 0, n);
    const b = norm(sliceIndex(stop, 'stop'), n, 0, n);
    for (let i = a; i < b; i += st) out.push(items[i]);
  } else {
    const a = norm(sliceIndex(start, 'start'), n - 1, -1, n - 1);
    const b = norm(sliceIndex(stop, 'stop'), -1, -1, n - 1);
    for (let i = a; i > b; i += st) out.push(items[i]);
  }
  return k === 'string' ? out.join('') : out;
}
