// minijinja-cli's date functions (minijinja-contrib, which the CLI registers): `now()` and the
// `datetimeformat`, `dateformat` and `timeformat` filters. Values are unix timestamps (seconds) or
// ISO 8601 strings; formats are the named ones (short, medium, long, full, iso, unix) or a format
// description in the `time` crate's syntax (`[year]-[month]-[day] [hour]:[minute]`), the common
// components of which are supported. `tz=` converts to an IANA time zone; without it the value's
// own offset is kept (UTC for timestamps). The context defaults (DATETIME_FORMAT, TIMEZONE...)
// minijinja also reads are not.
import { EvalError } from './errors.js';
import { JFloat } from './values.js';

interface Moment {
  // Wall-clock fields in the value's (or the requested) offset.
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanos: number;
  weekday: number; // 0 = Sunday
  offsetMinutes: number;
  unix: number; // whole seconds
  hasTime: boolean;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

// The current time as a unix timestamp in seconds, to the microsecond, as minijinja's now().
export function now(): JFloat {
  return new JFloat(Math.floor(Date.now() * 1000) / 1_000_000);
}

// A moment at `ms` since the epoch, seen at a fixed offset.
function atOffset(ms: number, nanosExtra: number, offsetMinutes: number, hasTime: boolean): Moment {
  const d = new Date(ms + offsetMinutes * 60_000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    nanos: d.getUTCMilliseconds() * 1_000_000 + nanosExtra,
    weekday: d.getUTCDay(),
    offsetMinutes,
    unix: Math.floor(ms / 1000),
    hasTime,
  };
}

// The offset of IANA zone `tz` at instant `ms`, in minutes.
function zoneOffset(ms: number, tz: string): number {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    }).formatToParts(ms);
  } catch {
    throw new EvalError(`invalid operation: unknown timezone '${tz}'`);
  }
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return Math.round((local - (ms - (ms % 1000))) / 60_000);
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

function toMoment(v: unknown, tz: string | undefined, allowDate: boolean): Moment {
  let ms: number;
  let nanosExtra = 0;
  let offset = 0;
  let hasTime = true;
  if (typeof v === 'number' || v instanceof JFloat) {
    const s = typeof v === 'number' ? v : v.v;
    // The time crate's range, years -9999 to 9999 (JavaScript dates end sooner than 1e300).
    if (!Number.isFinite(s) || s < -377_705_116_800 || s > 253_402_300_799) throw new EvalError('invalid operation: date out of range');
    ms = Math.floor(s * 1000);
    nanosExtra = Math.round((s * 1000 - ms) * 1_000_000) % 1_000_000;
  } else if (typeof v === 'string') {
    const m = ISO.exec(v.trim());
    if (!m) throw new EvalError('invalid operation: not a valid date or timestamp');
    const [, y, mo, d, h, mi, se, frac, off] = m;
    hasTime = h !== undefined;
    const fracDigits = (frac ?? '').padEnd(9, '0');
    ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(se ?? 0), Number(fracDigits.slice(0, 3)));
    nanosExtra = Number(fracDigits.slice(3));
    if (off && off.toUpperCase() !== 'Z') {
      const sign = off[0] === '-' ? -1 : 1;
      const digits = off.slice(1).replace(':', '');
      offset = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0));
      ms -= offset * 60_000;
    }
  } else {
    throw new EvalError('invalid operation: value is not a datetime');
  }
  if (!hasTime) {
    if (!allowDate) throw new EvalError('invalid operation: filter requires time, but only received a date');
    return atOffset(ms, 0, 0, false);
  }
  if (tz !== undefined && tz !== 'original') offset = zoneOffset(ms, tz);
  return atOffset(ms, nanosExtra, offset, true);
}

const pad = (n: number, width: number) => String(Math.abs(n)).padStart(width, '0');

// One `[component modifier:value ...]` of a format description.
function component(m: Moment, spec: string): string {
  const [name, ...mods] = spec.trim().split(/\s+/);
  const mod = (k: string, dflt: string) => mods.find((x) => x.startsWith(`${k}:`))?.slice(k.length + 1) ?? dflt;
  const padded = (n: number, width: number) =>
    mod('padding', 'zero') === 'none' ? String(n) : mod('padding', 'zero') === 'space' ? String(n).padStart(width, ' ') : pad(n, width);
  switch (name) {
    case 'year':
      return mod('repr', 'full') === 'last_two' ? pad(m.year % 100, 2) : padded(m.year, 4);
    case 'month': {
      const repr = mod('repr', 'numerical');
      if (repr === 'short') return MONTHS[m.month - 1]!.slice(0, 3);
      if (repr === 'long') return MONTHS[m.month - 1]!;
      return padded(m.month, 2);
    }
    case 'day':
      return padded(m.day, 2);
    case 'weekday': {
      const repr = mod('repr', 'long');
      if (repr === 'short') return WEEKDAYS[m.weekday]!.slice(0, 3);
      if (repr === 'sunday') return String(m.weekday + (mod('one_indexed', 'true') === 'true' ? 1 : 0));
      if (repr === 'monday') return String(((m.weekday + 6) % 7) + (mod('one_indexed', 'true') === 'true' ? 1 : 0));
      return WEEKDAYS[m.weekday]!;
    }
    case 'hour': {
      if (mod('repr', '24') === '12') return padded(m.hour % 12 === 0 ? 12 : m.hour % 12, 2);
      return padded(m.hour, 2);
    }
    case 'period':
      return mod('case', 'upper') === 'lower' ? (m.hour < 12 ? 'am' : 'pm') : m.hour < 12 ? 'AM' : 'PM';
    case 'minute':
      return padded(m.minute, 2);
    case 'second':
      return padded(m.second, 2);
    case 'subsecond': {
      const digits = mod('digits', 'one_or_more');
      const nine = pad(m.nanos, 9);
      if (digits === 'one_or_more') return nine.replace(/0+$/, '') || '0';
      const n = Number(digits);
      if (!Number.isInteger(n) || n < 1 || n > 9) throw new EvalError('invalid operation: invalid format string');
      return nine.slice(0, n);
    }
    case 'offset_hour': {
      const h = Math.trunc(m.offsetMinutes / 60);
      const sign = m.offsetMinutes < 0 ? '-' : mod('sign', 'automatic') === 'mandatory' ? '+' : '';
      return sign + padded(Math.abs(h), 2);
    }
    case 'offset_minute':
      return padded(Math.abs(m.offsetMinutes % 60), 2);
    case 'unix_timestamp':
      return String(m.unix);
    default:
      throw new EvalError('invalid operation: invalid format string');
  }
}

// Renders a `time` format description: `[component]`s, `[[` for a literal bracket, text as is.
function formatDescription(m: Moment, fmt: string): string {
  let out = '';
  for (let i = 0; i < fmt.length;) {
    if (fmt.startsWith('[[', i)) {
      out += '[';
      i += 2;
    } else if (fmt[i] === '[') {
      const end = fmt.indexOf(']', i);
      if (end < 0) throw new EvalError('invalid operation: invalid format string');
      out += component(m, fmt.slice(i + 1, end));
      i = end + 1;
    } else {
      out += fmt[i++];
    }
  }
  return out;
}

const ISO_FORMAT = '[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]';
const NAMED: Record<'datetime' | 'date' | 'time', Record<string, string>> = {
  datetime: {
    short: '[year]-[month]-[day] [hour]:[minute]',
    medium: '[month repr:short] [day padding:none] [year] [hour]:[minute]',
    long: '[month repr:long] [day padding:none] [year] [hour]:[minute]:[second]',
    full: '[weekday], [month repr:long] [day padding:none] [year] [hour]:[minute]:[second].[subsecond]',
    iso: ISO_FORMAT,
    unix: '[unix_timestamp]',
  },
  date: {
    short: '[year]-[month]-[day]',
    medium: '[month repr:short] [day padding:none] [year]',
    long: '[month repr:long] [day padding:none] [year]',
    full: '[weekday], [month repr:long] [day padding:none] [year]',
  },
  time: {
    short: '[hour]:[minute]',
    medium: '[hour]:[minute]',
    long: '[hour]:[minute]:[second]',
    full: '[hour]:[minute]:[second].[subsecond]',
    iso: ISO_FORMAT,
    unix: '[unix_timestamp]',
  },
};

export function formatDate(kind: 'datetime' | 'date' | 'time', v: unknown, format: unknown, tz: unknown): string {
  const f = format === undefined || format === null ? 'medium' : String(format);
  const m = toMoment(v, tz === undefined || tz === null ? undefined : String(tz), kind === 'date');
  return formatDescription(m, NAMED[kind][f] ?? f);
}
