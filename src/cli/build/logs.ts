// `bkci build logs`: print job logs as raw text, every script job in order under a header, or one job.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { writeAndWait } from '../../util/fd-writer.js';
import { writeApiResult } from '../../util/output.js';
import { redact, redactData, streamRedactor } from '../../util/redact.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, type RunF } from '../command.js';
import { type BuildRef, buildRef, buildRefShape } from './shared.js';

export interface LogsInput extends ApiInput {
  build: BuildRef;
  job?: string;
  failed: boolean;
}

export function logsCommand(build: Command, io: Io, run: RunF<LogsInput> = runLogs): Command {
  const cmd = build
    .command('logs')
    .description('print job logs as raw text: every script job in order under a header, or one job')
    .argument('<build>', 'build number or URL', buildRef)
    .option('--job <id>', 'only this job (id or step key), without a header')
    .option('--failed', 'only the failed jobs');
  apiOptions(cmd);
  return cmd.action(async (ref: BuildRef, flags: ApiFlagValues & { job?: string; failed?: boolean }) => {
    const input = await checkInput(
      cmd,
      (z) => z.object({ ...apiShape(z), build: buildRefShape(z), job: z.string().min(1, { error: 'a job id or step key' }).optional(), failed: z.boolean() }),
      { ...apiInput(flags, io, ref), build: ref, job: flags.job, failed: flags.failed === true },
    );
    await run(input, io);
  });
}

export async function runLogs(input: LogsInput, io: Io): Promise<void> {
  await withApi(input, io, true, async (api) => {
    const { jobLabel } = await import('../../api/builds.js');
    // Each log is streamed through as it arrives, redacted line by line, each part waiting for the
    // reader (constant memory, even with --json: the array is written piece by piece, the same
    // JSON writeApiResult would print).
    const logs = await api.logsOf(input.build.number, {
      job: input.job,
      failed: input.failed,
      terminal: !input.json && io.stdoutIsTTY ? { color: io.color } : undefined,
    });
    if (input.json) io.stdout.write(logs.length ? '[\n' : '[]\n');
    for (const [i, { job, pipe }] of logs.entries()) {
      const hide = streamRedactor();
      if (input.json) {
        const head = JSON.stringify(redactData({ job: job.id, name: jobLabel(job), state: job.state ?? null }), null, 2).slice(0, -2);
        io.stdout.write(`  ${head.replace(/\n/g, '\n  ')},\n    "log": "`);
        const escaped = (text: string) => JSON.stringify(text).slice(1, -1);
        try {
          await pipe((text) => writeAndWait(io.stdout, escaped(hide.part(text))));
        } catch (err) {
          // The array was started: whatever went wrong (the API, the network, Ctrl-C), it is
          // closed, so stdout stays whole JSON. The job that failed keeps what arrived of its log
          // and says why it ends there; the error itself goes to stderr as always.
          const why = err instanceof Error ? err.message : String(err);
          io.stdout.write(`${escaped(hide.end())}",\n    "error": ${JSON.stringify(redact(why))}\n  }\n]\n`);
          throw err;
        }
        io.stdout.write(`${escaped(hide.end())}"\n  }${i < logs.length - 1 ? ',' : ''}\n${i === logs.length - 1 ? ']\n' : ''}`);
        continue;
      }
      if (!input.job) writeApiResult(io, false, job, (j) => `${i > 0 ? '\n' : ''}=== ${jobLabel(j)} (${j.state ?? 'unknown'}, job ${j.id}) ===\n`);
      // What arrived of a log that then fails is printed (its last line too) before the error.
      const rest = await pipe((text) => writeAndWait(io.stdout, hide.part(text))).then(
        () => hide.end(),
        (err: unknown) => {
          const held = hide.end();
          if (held !== '') io.stdout.write(held.endsWith('\n') ? held : held + '\n');
          throw err;
        },
      );
      // The last line of a log without its newline gets one (the next header starts a line).
      if (rest !== '') io.stdout.write(rest.endsWith('\n') ? rest : rest + '\n');
    }
  });
}
