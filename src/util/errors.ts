// Errors that carry their exit code; src/cli/main.ts prints them once.
export class BkciError extends Error {
  readonly exitCode: 1 | 2 = 1;
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
