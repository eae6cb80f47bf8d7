// Errors that carry their exit code; src/cli/main.ts prints them once.
export class BkciError extends Error {
  // 130/143: stopped by SIGINT/SIGTERM (see Interrupted).
  readonly exitCode: 1 | 2 | 130 | 143 = 1;
  constructor(
    message: string,
    readonly hint?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

// Bad flag or argument: exit 2.
export class UsageError extends BkciError {
  override readonly exitCode = 2;
}

// Bad file or data (missing file, unparsable YAML, template syntax error): exit 2.
export class InputError extends BkciError {
  override readonly exitCode = 2;
}

// The checked thing is bad (invalid pipeline, failed build): exit 1.
export class CheckFailed extends BkciError {}

// The result was already printed (e.g. the build failed); exit 1 without another message.
export class SilentFailure extends BkciError {
  constructor() {
    super('');
  }
}

// Stopped by Ctrl-C (SIGINT, exit 130) or SIGTERM (exit 143): what was going on is named; the
// partial work has been cleaned up by whoever was doing it.
export class Interrupted extends BkciError {
  override readonly exitCode: 130 | 143;
  constructor(signal: 'SIGINT' | 'SIGTERM' = 'SIGINT', doing?: string) {
    super(`interrupted by ${signal === 'SIGINT' ? 'Ctrl-C (SIGINT)' : 'SIGTERM'}${doing ? ` while ${doing}` : ''}`);
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
}
