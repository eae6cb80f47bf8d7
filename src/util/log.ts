// Logging to stderr through pino: JSON lines when stderr is not a terminal, a short human line
// (`WARN message key=value`) on a terminal. Every line passes through redact().
import { Writable } from 'node:stream';
import { redact } from './redact.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface Logger {
  trace(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  level: string;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS: Record<number, string> = { 10: '90', 20: '90', 30: '36', 40: '33', 50: '31', 60: '31' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v']);

function prettyLine(line: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const lvl = Number(rec.level);
  const name = (LEVEL_NAMES[lvl] ?? 'LOG').padEnd(5);
  const head = color ? `\u001b[${LEVEL_COLORS[lvl] ?? '0'}m${name}\u001b[0m` : name;
  const extras = Object.entries(rec)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${head} ${String(rec.msg ?? '')}${extras.length ? ' ' + extras.join(' ') : ''}\n`;
}

// A stream that redacts and optionally pretty-prints pino's JSON lines before stderr.
function sink(stderr: NodeJS.WritableStream, pretty: boolean, color: boolean): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = redact(chunk.toString('utf8'));
      stderr.write(
        pretty
          ? text
              .split('\n')
              .filter(Boolean)
              .map((l) => prettyLine(l, color))
              .join('')
          : text,
      );
      done();
    },
  });
}

type PinoModule = typeof import('pino').default;

export interface LogOptions {
  level: LogLevel;
  pretty: boolean;
  color: boolean;
}

// pino is loaded only when a command first logs, to keep `bkci --version` fast.
export function createLogger(stderr: () => NodeJS.WritableStream, opts: LogOptions, load: () => PinoModule): Logger {
  let real: Logger | undefined;
  const get = (): Logger => {
    if (!real) {
      const pino = load();
      real = pino(
        {
          level: opts.level,
          base: undefined,
          timestamp: opts.pretty ? false : pino.stdTimeFunctions.isoTime,
          redact: { paths: ['token', '*.token', 'headers.authorization', 'authorization', '*.authorization'], censor: '[REDACTED]' },
        },
        sink(stderr(), opts.pretty, opts.color),
      ) as unknown as Logger;
    }
    return real;
  };
  const order = LOG_LEVELS;
  const enabled = (lvl: LogLevel) => opts.level !== 'silent' && order.indexOf(lvl) >= order.indexOf(opts.level);
  const method = (lvl: Exclude<LogLevel, 'silent' | 'fatal'>) => (obj: object | string, msg?: string) => {
    if (!enabled(lvl)) return;
    const l = get();
    if (typeof obj === 'string') l[lvl](obj);
    else l[lvl](obj, msg);
  };
  return {
    trace: method('trace'),
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    level: opts.level,
  };
}
