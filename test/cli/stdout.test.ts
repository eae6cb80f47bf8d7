// bkci writes its product to fd 1 directly (src/util/fd-writer.ts): the writer on its own against
// real descriptors, then the bin against the readers a pipeline step gives it.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fdWriter, writeAndWait } from '../../src/util/fd-writer.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'dist/bundle/bin.js');
const VLLM = join(ROOT, 'test/fixtures/vllm');
const work = mkdtempSync(join(tmpdir(), 'bkci-stdout-'));

const collector = () => {
  const chunks: Buffer[] = [];
  return { chunks, write: (c: string | Uint8Array) => chunks.push(Buffer.from(c)) };
};
const unused = () => {
  throw new Error('the stream was not expected to be used');
};

describe('fdWriter', () => {
  it('writes every byte to the descriptor, multi-byte text included', () => {
    const file = join(work, 'out.txt');
    const fd = openSync(file, 'w');
    const out = fdWriter(fd, unused, unused);
    const big = 'éü→ line\n'.repeat(50_000);
    out.write('first\n');
    out.write('');
    out.write(big);
    closeSync(fd);
    expect(readFileSync(file, 'utf8')).toBe('first\n' + big);
  });

  it('hands the rest to the stream when the descriptor would block, bytes intact, and keeps using it', () => {
    // A FIFO opened read-write and non-blocking: nobody reads, so it fills (64 KiB on Linux).
    const fifo = join(work, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const rest = collector();
    const out = fdWriter(fd, () => rest, unused);
    const text = '€'.repeat(100_000); // 3 bytes each: the pipe fills part-way through a character
    out.write(text);
    out.write('after\n');
    const got: Buffer[] = [];
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      let n = 0;
      try {
        n = readSync(fd, buf);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
      if (n === 0) break;
      got.push(Buffer.from(buf.subarray(0, n)));
    }
    closeSync(fd);
    expect(got.length).toBeGreaterThan(0);
    expect(rest.chunks.length).toBe(2);
    expect(Buffer.concat([...got, ...rest.chunks]).toString('utf8')).toBe(text + 'after\n');
  });

  it('waits for a slow reader once the descriptor would block: what is queued in memory stays bounded', async () => {
    // A real pipe (a FIFO, both ends non-blocking) with a reader that takes 16 KiB every 2 ms, and
    // a real stream over the write end as the fallback (process.stdout is such a socket).
    const fifo = join(work, 'slow-fifo');
    execFileSync('mkfifo', [fifo]);
    const rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const wfd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    let socket: Socket | undefined;
    const out = fdWriter(wfd, () => (socket = new Socket({ fd: wfd, readable: false, writable: true })), unused);
    const got: Buffer[] = [];
    const buf = Buffer.alloc(16 << 10);
    const reader = setInterval(() => {
      try {
        const n = readSync(rfd, buf);
        if (n > 0) got.push(Buffer.from(buf.subarray(0, n)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
    }, 2);
    const part = (i: number) => `${String(i).padStart(6, '0')}${'.'.repeat(32 << 10)}\n`;
    let queued = 0;
    for (let i = 0; i < 200; i++) {
      await writeAndWait(out, part(i));
      queued = Math.max(queued, socket?.writableLength ?? 0);
    }
    expect(socket).toBeDefined(); // the descriptor did block: the stream was used
    await new Promise<void>((resolve) => socket!.end(resolve));
    while (Buffer.concat(got).length < 200 * part(0).length) await new Promise((r) => setTimeout(r, 5));
    clearInterval(reader);
    closeSync(rfd);
    // ~6.5 MB written; at most the stream's limit and one part ever waited in memory.
    expect(queued).toBeLessThanOrEqual(socket!.writableHighWaterMark + part(0).length);
    expect(Buffer.concat(got).toString()).toBe(Array.from({ length: 200 }, (_, i) => part(i)).join(''));
  });

  it('treats a closed descriptor as Node does a missing stdout, and a gone reader as the end', () => {
    const fd = openSync(join(work, 'closed'), 'w');
    closeSync(fd);
    const rest = collector();
    fdWriter(fd, () => rest, unused).write('nowhere\n');
    expect(Buffer.concat(rest.chunks).toString()).toBe('nowhere\n');
  });
});

// The vLLM render (~240 KB, several pipe buffers) through the bin, as `... | upload` runs it.
const set = (JSON.parse(readFileSync(join(VLLM, 'variable-sets.json'), 'utf8')) as { sets: { name: string; defines: [string, string][] }[] }).sets[1]!;
const renderArgs = [
  'pipeline',
  'render',
  join(VLLM, 'test-template-ci.j2'),
  join(VLLM, 'test-pipeline.yaml'),
  ...set.defines.flatMap(([k, v]) => ['-D', `${k}=${v}`]),
];
const expected = readFileSync(join(VLLM, `expected/${set.name}.minijinja.yaml`), 'utf8');

// Runs the bin with stdout on a pipe made by Python: non-blocking or not, read after a pause or
// only its first bytes. Prints what was read, then the bin's exit status and stderr as JSON.
const pipeRunner = join(work, 'pipe.py');
writeFileSync(
  pipeRunner,
  `import fcntl, json, os, subprocess, sys, time
mode, argv = sys.argv[1], sys.argv[2:]
r, w = os.pipe()
if mode == 'nonblocking':
    fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen(argv, stdout=w, stderr=subprocess.PIPE)
os.close(w)
out = b''
if mode == 'head':
    out = os.read(r, 100)
    os.close(r)
else:
    time.sleep(0.5)
    while True:
        b = os.read(r, 1 << 16)
        if not b:
            break
        out += b
err = p.stderr.read()
p.wait()
sys.stdout.buffer.write(out)
sys.stdout.write('\\n' + json.dumps({'status': p.returncode, 'stderr': err.decode()}))
`,
);
const throughPipe = (mode: string) => {
  const r = spawnSync('python3', [pipeRunner, mode, BIN, ...renderArgs], { encoding: 'utf8', maxBuffer: 64 << 20 });
  expect(r.status, r.stderr).toBe(0);
  const cut = r.stdout.lastIndexOf('\n');
  return { out: r.stdout.slice(0, cut), ...(JSON.parse(r.stdout.slice(cut + 1)) as { status: number; stderr: string }) };
};

describe('the bin writing to a pipe', () => {
  it.each(['blocking', 'nonblocking'])('a slow reader on a %s pipe gets the whole render', (mode) => {
    const r = throughPipe(mode);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toBe(expected);
  });

  it('a reader that stops early (`| head`) ends bkci quietly with status 0', () => {
    const r = throughPipe('head');
    expect(r.out).toBe(expected.slice(0, 100));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
