// Flag parsing of `bkci self install` through the runF seam. Nothing is installed.
import { describe, expect, it } from 'vitest';
import { installCommand } from '../../../src/cli/self/install.js';
import { parse } from './harness.js';

describe('self install', () => {
  it('/usr/local by default; --prefix; --json', async () => {
    let r = await parse('self', installCommand, ['install']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({ prefix: '/usr/local', json: false });
    r = await parse('self', installCommand, ['install', '--prefix', '~/.local', '--json']);
    expect(r.input).toEqual({ prefix: '~/.local', json: true });
  });

  it.each([
    [['--prefix', ''], /^bkci: --prefix is required: a directory/m],
    [['--prefix', 'a\nb'], /^bkci: --prefix "a\\nb": a directory/m],
    [['/opt'], /too many arguments/],
  ])('%j is exit 2 naming the flag', async (argv, message) => {
    const r = await parse('self', installCommand, ['install', ...argv]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(message);
  });
});
