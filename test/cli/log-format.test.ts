// Log lines on stderr: readable text by default (a Buildkite job log is read by people), coloured
// only on a terminal, JSON lines with --log-format json; redaction applies to both.
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createRequire } from 'node:module';
import { createLogger } from '../../src/util/log.js';
import { registerSecret } from '../../src/util/redact.js';
import { runBkci } from '../helpers/io.js';

const require = createRequire(import.meta.url);

function capture(format: 'text' | 'json' | undefined, color = false) {
  let text = '';
  const stderr = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  const log = createLogger(
    () => stderr,
    { level: 'info', format, color },
    () => require('pino'),
  );
  return { log, out: () => text };
}

describe('log lines', () => {
  it('text by default: LEVEL message key=value, values quoted only when they need it, no timestamp', () => {
    const { log, out } = capture(undefined);
    log.warn({ path: '/tmp/a b', count: 3, ok: true, empty: '', list: [1, 'x'], plain: 'main' }, 'something happened');
    log.info('no fields');
    log.debug('not shown at info');
    expect(out()).toBe('WARN  something happened path="/tmp/a b" count=3 ok=true empty="" list=[1,"x"] plain=main\n' + 'INFO  no fields\n');
  });

  it('colour only when asked (a terminal)', () => {
    const { log, out } = capture('text', true);
    log.error('bad');
    expect(out()).toBe('\u001b[31mERROR\u001b[0m bad\n');
  });

  it('--log-format json: one object a line with level, time and fields', () => {
    const { log, out } = capture('json');
    log.warn({ queue: 'h100' }, 'no agents');
    const lines = out().trim().split('\n');
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 40, msg: 'no agents', queue: 'h100' });
    expect(typeof rec.time).toBe('string');
  });

  it('secrets are redacted in both formats', () => {
    registerSecret('s3cr3t-value-xyz');
    for (const format of ['text', 'json'] as const) {
      const { log, out } = capture(format);
      log.warn({ token: 'bkua_0123456789abcdef', note: 'has s3cr3t-value-xyz inside' }, 'sent Bearer abcdefghijkl');
      expect(out()).not.toMatch(/s3cr3t-value-xyz|bkua_0123456789abcdef|abcdefghijkl/);
      expect(out()).toContain('[REDACTED]');
    }
  });
});

describe('--log-format through the CLI', () => {
  const setupArgs = ['node', 'teardown', '--root', '/nonexistent-bkci-root', '--dry-run'];

  it('text lines on a stderr that is not a terminal; JSON with --log-format json', async () => {
    const text = await runBkci(setupArgs);
    expect(text.stderr).toMatch(/^INFO {2}nothing to tear down/m);
    expect(text.stderr).not.toMatch(/^\{/m);
    const json = await runBkci(['--log-format', 'json', ...setupArgs]);
    const lines = json.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(JSON.parse(l)).toHaveProperty('msg');
    const eq = await runBkci(['--log-format=json', ...setupArgs]);
    expect(JSON.parse(eq.stderr.trim().split('\n')[0]!)).toHaveProperty('level', 30);
  });

  it('an unknown format is exit 2 naming the flag', async () => {
    const r = await runBkci(['--log-format', 'xml', ...setupArgs]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: --log-format "xml": Allowed choices are text, json/m);
  });
});
