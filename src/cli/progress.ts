// How `build wait` shows its progress on stderr: a spinner line redrawn in place on a terminal,
// one log line per change otherwise (a Buildkite job log, a file). The wait itself (src/api/wait.ts)
// only reports events.
import { visible } from '../util/terminal.js';
import type { WaitEvent } from '../api/wait.js';
import { formatDuration } from '../util/duration.js';
import type { Io } from '../util/io.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface ProgressView {
  onProgress(e: WaitEvent): void;
  // Clears the spinner line (call once the wait is over, however it ended).
  close(): void;
}

export function progressView(io: Io): ProgressView {
  const quiet = ['error', 'fatal', 'silent'].includes(io.log.level);
  const spinner = io.stderrIsTTY && !quiet;
  let drawn = false;
  let frame = 0;
  let last = '';
  const clear = () => {
    if (drawn) io.stderr.write('\r\u001b[K');
    drawn = false;
  };
  return {
    onProgress(e) {
      if (e.kind === 'retrying') {
        clear();
        io.log.warn({ build: e.build, failures: e.failures, nextInMs: e.nextInMs }, e.line);
        return;
      }
      const elapsed = formatDuration(e.elapsedMs);
      if (spinner) {
        io.stderr.write(`\r\u001b[K${FRAMES[frame++ % FRAMES.length]} ${visible(e.line)} (${elapsed})`);
        drawn = true;
      } else if (e.line !== last) {
        const p = e.progress;
        io.log.info({ build: e.build.number, state: e.build.state, done: p.done, total: p.total, running: p.running.length, elapsed }, e.line);
      }
      last = e.line;
    },
    close: clear,
  };
}
