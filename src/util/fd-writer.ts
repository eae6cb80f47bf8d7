// stdout written with write(2) on fd 1 instead of through process.stdout. Node builds that stream
// on first use, and for a pipe (`bkci pipeline render | buildkite-agent pipeline upload`) that
// loads its socket and stream machinery: ~4 ms of a ~75 ms render. The writes are synchronous,
// as process.stdout's are for files and pipes on Linux, so output and exit stay ordered.
//
// A descriptor in non-blocking mode (shared with a parent that set O_NONBLOCK) can refuse a write
// with EAGAIN: from then on everything (the rest of that write included, as bytes) goes through
// the stream, which waits for the reader. A reader that went away (`bkci ... | head`) ends the
// process quietly, as a closed pipe should.
import { writeSync } from 'node:fs';

export interface Out {
  write(chunk: string): unknown;
}

export function fdWriter(fd: number, stream: () => { write(chunk: string | Uint8Array): unknown }, onClosed: () => void): Out {
  let fallback: { write(chunk: string | Uint8Array): unknown } | undefined;
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
  };
}
