// Types for the parts of Nunjucks' internals that bkci's Jinja layer builds on (the package ships
// no declarations for its lexer module).
declare module 'nunjucks/src/lexer.js' {
  export interface Token {
    type: string;
    value: string;
    lineno: number;
    colno: number;
  }
  export interface Tokenizer {
    nextToken(): Token | null;
    tags: { BLOCK_END: string; VARIABLE_END: string; COMMENT_END: string };
  }
  export function lex(src: string, opts?: object): Tokenizer;
  const _default: unknown;
  export default _default;
  export const TOKEN_STRING: string;
  export const TOKEN_WHITESPACE: string;
  export const TOKEN_BLOCK_START: string;
  export const TOKEN_BLOCK_END: string;
  export const TOKEN_VARIABLE_START: string;
  export const TOKEN_VARIABLE_END: string;
  export const TOKEN_LEFT_PAREN: string;
  export const TOKEN_RIGHT_PAREN: string;
  export const TOKEN_LEFT_BRACKET: string;
  export const TOKEN_RIGHT_BRACKET: string;
  export const TOKEN_LEFT_CURLY: string;
  export const TOKEN_RIGHT_CURLY: string;
  export const TOKEN_OPERATOR: string;
  export const TOKEN_COMMA: string;
  export const TOKEN_COLON: string;
  export const TOKEN_TILDE: string;
  export const TOKEN_PIPE: string;
  export const TOKEN_INT: string;
  export const TOKEN_FLOAT: string;
  export const TOKEN_BOOLEAN: string;
  export const TOKEN_NONE: string;
  export const TOKEN_SYMBOL: string;
  export const TOKEN_REGEX: string;
}

declare module 'nunjucks/src/lib.js' {
  export class TemplateError extends Error {
    lineno?: number;
    colno?: number;
  }
}
