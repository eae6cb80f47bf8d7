// stdout written with write(2) on fd 1 instead of through process.stdout. Node builds that stream
// on first use, and for a pipe (`bkci pipeline render | buildkite-agent pipeline upload`) that
// loads its socket and stream machinery: ~4 ms of a ~75 ms render. The writes are synchronous,
// as process.stdout's are for files and pipes on Linux, so output and exit stay ordered.
//
// A descriptor in non-blocking mode (shared with a parent that set O_NONBLOCK) can refuse a write
// with EAGAIN: from then on everything (the rest of that write included, as bytes) goes through
// the stream, which queues what the reader has not taken yet. A long output (`build logs`) awaits
// whenWritable() between parts, so that queue stays bounded however slow the reader. A reader
// that went away (`bkci ... | head`) ends the process quietly, as a closed pipe should.
import { writeSync } from 'node:fs';

// What a writer's fallback stream (process.stdout) offers: write, and the state and events of its
// queue (as a Node Writable has them).
export interface Sink {
  write(chunk: string | Uint8Array): unknown;
  readonly writableNeedDrain?: boolean;
  once?(event: 'drain' | 'close' | 'error', listener: () => void): unknown;
  off?(event: 'drain' | 'close' | 'error', listener: () => void): unknown;
}

export interface Out {
  write(chunk: string): unknown;
  // Resolves when the writer can take more: at once, unless what it was given waits in a queue
  // past its limit for a slow reader (then when that queue has drained).
  whenWritable?(): Promise<void>;
}

export function fdWriter(fd: number, stream: () => Sink, onClosed: () => void): Out {
  let fallback: Sink | undefined;
  return {
    write(chunk: string): boolean {
      if (fallback) return fallback.write(chunk) !== false;
      const data = Buffer.from(chunk, 'utf8');
      let off = 0;
      try {
        while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') {
          onClosed();
          return false;
        }
        // EBADF: no stdout at all; Node's stream for it discards what it is given.
        if (code !== 'EAGAIN' && code !== 'EBADF') throw err;
        fallback = stream();
        return fallback.write(data.subarray(off)) !== false;
      }
      return true;
    },
    whenWritable: () => (fallback ? drained(fallback) : Promise.resolve()),
  };
}

// Resolves when a stream's queue is under its limit again (or the stream ended or failed: there
// is nothing to wait for then, and its own error handling reports it).
export function drained(s: Sink): Promise<void> {
  if (!s.writableNeedDrain || !s.once || !s.off) return Promise.resolve();
  const { once, off } = { once: s.once.bind(s), off: s.off.bind(s) };
  return new Promise((resolve) => {
    const done = () => {
      for (const e of ['drain', 'close', 'error'] as const) off(e, done);
      resolve();
    };
    for (const e of ['drain', 'close', 'error'] as const) once(e, done);
  });
}

// Writes `text` to stdout (or any Out) and waits until the writer can take more: the way to write
// an output of unbounded size part by part in constant memory.
export async function writeAndWait(out: Out | Sink, text: string): Promise<void> {
  if (text === '') return;
  out.write(text);
  await ('whenWritable' in out && out.whenWritable ? out.whenWritable() : drained(out as Sink));
}
