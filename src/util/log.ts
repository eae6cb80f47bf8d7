// Logging to stderr through pino. Lines are for people reading a terminal or a Buildkite job log:
// `WARN  message key=value` by default (coloured on a terminal), one JSON object a line with
// `--log-format json` (for a log collector). Every line passes through redact().
import { Writable } from 'node:stream';
import { redact } from './redact.js';
import { visible } from './terminal.js';

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
    .map(([k, v]) => `${k}=${logValue(v)}`);
  return `${head} ${visible(String(rec.msg ?? ''))}${extras.length ? ' ' + extras.join(' ') : ''}\n`;
}

// A value after `key=`: bare when it reads unambiguously, else quoted as JSON (spaces, quotes,
// '=', control characters, an empty string; objects and lists).
function logValue(v: unknown): string {
  if (typeof v === 'string') return v !== '' && !/[\s"'=\\\u0000-\u001f\u007f]/.test(v) ? v : JSON.stringify(v);
  return typeof v === 'number' || typeof v === 'boolean' || v === null ? String(v) : JSON.stringify(v);
}

// A stream that redacts pino's JSON lines and, unless they are wanted as JSON, writes them as text.
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

export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

export interface LogOptions {
  level: LogLevel;
  // text (the default): level, message, key=value; json: pino's JSON lines, with a timestamp.
  format?: LogFormat;
  // Colour in text lines (a terminal without NO_COLOR).
  color: boolean;
}

// pino is loaded only when a command first logs, to keep `bkci --version` fast.
export function createLogger(stderr: () => NodeJS.WritableStream, opts: LogOptions, load: () => PinoModule): Logger {
  let real: Logger | undefined;
  const get = (): Logger => {
    if (!real) {
      const pino = load();
      const json = opts.format === 'json';
      real = pino(
        {
          level: opts.level,
          base: undefined,
          // A job log and a terminal show their own time; a collector needs one in the line.
          timestamp: json ? pino.stdTimeFunctions.isoTime : false,
          redact: { paths: ['token', '*.token', 'headers.authorization', 'authorization', '*.authorization'], censor: '[REDACTED]' },
        },
        sink(stderr(), !json, opts.color),
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
