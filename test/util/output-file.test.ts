import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/util/errors.js';
import { writeOutput } from '../../src/util/output-file.js';

const dir = () => mkdtempSync(join(tmpdir(), 'bkci-out-'));
const sink = () => {
  let text = '';
  return { io: { cwd: '/', stdout: { write: (s: string) => void (text += s) } } as never as Parameters<typeof writeOutput>[2], text: () => text };
};

async function refusal(p: Promise<unknown>): Promise<InputError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).exitCode).toBe(2);
  return err as InputError;
}

describe('writeOutput (-o PATH)', () => {
  it('- and /dev/stdout are standard output', async () => {
    for (const t of ['-', '/dev/stdout', '/dev/fd/1', '/proc/self/fd/1']) {
      const s = sink();
      expect(await writeOutput(t, 'x: 1\n', s.io)).toBe('stdout');
      expect(s.text()).toBe('x: 1\n');
    }
  });

  it('creates a new file 0644, leaves an unchanged one alone, replaces a changed one keeping its mode', async () => {
    const d = dir();
    const io = { ...sink().io, cwd: d };
    expect(await writeOutput('sub/p.yml', 'a\n', io)).toBe('written');
    const f = join(d, 'sub/p.yml');
    expect(readFileSync(f, 'utf8')).toBe('a\n');
    expect(statSync(f).mode & 0o777).toBe(0o644);
    const ino = statSync(f).ino;
    expect(await writeOutput('sub/p.yml', 'a\n', io)).toBe('unchanged');
    expect(statSync(f).ino).toBe(ino);
    chmodSync(f, 0o600);
    expect(await writeOutput(f, 'b\n', io)).toBe('written');
    expect(readFileSync(f, 'utf8')).toBe('b\n');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(statSync(f).ino).not.toBe(ino); // replaced by rename, never truncated in place
  });

  it('writes through a symbolic link to a regular file: the target changes, the link stays', async () => {
    const d = dir();
    writeFileSync(join(d, 'real.yml'), 'old\n');
    symlinkSync('real.yml', join(d, 'link.yml'));
    expect(await writeOutput(join(d, 'link.yml'), 'new\n', sink().io)).toBe('written');
    expect(lstatSync(join(d, 'link.yml')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(d, 'link.yml'))).toBe('real.yml');
    expect(readFileSync(join(d, 'real.yml'), 'utf8')).toBe('new\n');
  });

  it('refuses a dangling symbolic link, a directory and a name the system refuses, naming the path', async () => {
    const d = dir();
    symlinkSync(join(d, 'nowhere/x'), join(d, 'dangling'));
    expect((await refusal(writeOutput(join(d, 'dangling'), 'x', sink().io))).message).toMatch(/dangling.*symbolic link to a file that does not exist/);
    expect(lstatSync(join(d, 'dangling')).isSymbolicLink()).toBe(true);
    mkdirSync(join(d, 'adir'));
    expect((await refusal(writeOutput(join(d, 'adir'), 'x', sink().io))).message).toMatch(/adir: cannot write the output: it is a directory/);
    const long = join(d, 'n'.repeat(100_000));
    const e = await refusal(writeOutput(long, 'x', sink().io));
    expect(e.message).toMatch(/the name is too long/);
    expect(e.message).toContain('100');
    expect(e.message.length).toBeLessThan(400);
    writeFileSync(join(d, 'file'), '');
    expect((await refusal(writeOutput(join(d, 'file/x.yml'), 'x', sink().io))).message).toMatch(/not a directory/);
    await refusal(writeOutput('', 'x', sink().io));
  });

  it('writes to a character device directly and never replaces it (/dev/null, /dev/zero)', async () => {
    for (const dev of ['/dev/null', '/dev/zero']) {
      expect(await writeOutput(dev, 'x: 1\n', sink().io)).toBe('streamed');
      expect(statSync(dev).isCharacterDevice()).toBe(true);
    }
    const d = dir();
    symlinkSync('/dev/null', join(d, 'null-link'));
    expect(await writeOutput(join(d, 'null-link'), 'x', sink().io)).toBe('streamed');
    expect(lstatSync(join(d, 'null-link')).isSymbolicLink()).toBe(true);
  });

  it('refuses a FIFO nobody reads (instead of waiting forever), writes to one that has a reader', async () => {
    const d = dir();
    const fifo = join(d, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expect((await refusal(writeOutput(fifo, 'x', sink().io))).message).toMatch(/FIFO that no process reads/);
    const reader = spawn('cat', [fifo]);
    let got = '';
    reader.stdout.on('data', (c: Buffer) => (got += c.toString()));
    const done = new Promise((r) => reader.on('close', r));
    // The reader opens the FIFO soon after it starts: retry until it has.
    let outcome: string | undefined;
    for (let i = 0; i < 200 && outcome === undefined; i++) {
      outcome = await writeOutput(fifo, 'through the fifo\n', sink().io).catch(async () => {
        await new Promise((r) => setTimeout(r, 25));
        return undefined;
      });
    }
    expect(outcome).toBe('streamed');
    await done;
    expect(got).toBe('through the fifo\n');
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });
});
