// An error in a template, at a 1-based line and column of the named template file.
export class TemplateError extends Error {
  constructor(
    readonly detail: string,
    readonly template: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(`${template}:${line}:${col}: ${detail}`);
    this.name = 'TemplateError';
  }
}

// Raised by the evaluator without a position; the interpreter attaches the node's position.
export class EvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalError';
  }
}
