// A job log shown on a terminal: the text and its colours, nothing that drives the terminal. A log
// is whatever a job printed (or a hostile build wrote on purpose): an OSC 52 sequence would set
// the clipboard, OSC 0 the window title, `ESC c` reset the screen, SO switch the character set.
// On a terminal bkci keeps printable text, tab, line feed, carriage return and backspace (progress
// bars), and SGR colour sequences (`ESC [ ... m`) unless colour is off; every other escape or
// control sequence is dropped, including Buildkite's own timestamp markers (`ESC _bk;t=...BEL`).
// Piped or in --json, the log is passed on byte for byte (see src/cli/build/logs.ts).
//
// The filter is a small ECMA-48 state machine fed chunk by chunk: a sequence split between two
// chunks is recognised, and an unterminated string sequence gives up after MAX_STRING characters
// rather than swallowing the rest of the log.

const MAX_CSI = 256;
const MAX_STRING = 64 * 1024;

type State = 'text' | 'esc' | 'escInter' | 'csi' | 'str' | 'strEsc';

// Control characters that do nothing harmful: tab, line feed, carriage return, backspace.
const SAFE_C0 = new Set([0x08, 0x09, 0x0a, 0x0d]);
// Anything that needs the state machine: C0 controls, DEL, C1 controls.
const NEEDS_WORK = /[\u0000-\u001f\u007f-\u009f]/;

export function terminalFilter(keepColor: boolean): (text: string, end?: boolean) => string {
  let state: State = 'text';
  let seq = '';
  let length = 0;
  return (text, end = false) => {
    let out = '';
    if (state === 'text' && !NEEDS_WORK.test(text)) return text;
    let run = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      switch (state) {
        case 'text': {
          if (c >= 0x20 && c !== 0x7f && (c < 0x80 || c > 0x9f)) continue;
          if (SAFE_C0.has(c)) continue;
          out += text.slice(run, i);
          run = i + 1;
          if (c === 0x1b) state = 'esc';
          else if (c === 0x9b) {
            state = 'csi';
            seq = '';
          } else if (c === 0x9d || c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f) {
            state = 'str';
            length = 0;
          }
          // Every other control character is dropped.
          break;
        }
        case 'esc':
          if (c === 0x5b) {
            state = 'csi';
            seq = '';
          } else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) {
            // OSC, DCS, SOS, PM, APC: a string until BEL or ST.
            state = 'str';
            length = 0;
          } else if (c >= 0x20 && c <= 0x2f) state = 'escInter';
          else if (c === 0x1b) state = 'esc';
          else state = 'text';
          run = i + 1;
          break;
        case 'escInter':
          // ESC, intermediates, then one final byte (`ESC ( B`): all dropped.
          if (c < 0x20 || c > 0x2f) state = 'text';
          run = i + 1;
          break;
        case 'csi':
          if (c >= 0x40 && c <= 0x7e) {
            if (keepColor && c === 0x6d && /^[0-9;:]*$/.test(seq)) out += `\u001b[${seq}m`;
            state = 'text';
          } else if (c >= 0x20 && c <= 0x3f && seq.length < MAX_CSI) seq += text[i];
          else state = c === 0x1b ? 'esc' : 'text';
          run = i + 1;
          break;
        case 'str':
          if (c === 0x07 || c === 0x9c) state = 'text';
          else if (c === 0x1b) state = 'strEsc';
          else if (++length > MAX_STRING) state = 'text';
          run = i + 1;
          break;
        case 'strEsc':
          // ESC \ ends the string; ESC followed by anything else starts a new sequence.
          if (c === 0x5c) state = 'text';
          else {
            state = 'esc';
            i--;
          }
          run = i + 1;
          break;
      }
    }
    if (state === 'text') out += text.slice(run);
    if (end) state = 'text';
    return out;
  };
}

// Bidirectional-text controls: they reorder what a reader sees (a message that hides its end).
const BIDI = '\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069';
const UNSAFE = new RegExp(`[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f${BIDI}]`, 'g');

// A message for stderr (an error, its hint, a log line's text): line feeds and tabs stay, every
// other control character (escape sequences, carriage return, C1) and bidi control is shown as
// `\xNN` / `\uNNNN`, so a branch name or an API's text in a message cannot drive the terminal or
// hide part of the message. Values that reach a message unquoted need no care where it is built.
export function visible(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}
