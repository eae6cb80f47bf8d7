// Names and messages from the Buildkite API in bkci's text output (build get, build list, queue
// status) never drive the terminal they are shown on: a job named with an OSC 52 clipboard write,
// a window-title change or a screen reset shows as its text. Piped output and --json keep the
// API's text as it is (a script reads the data, not a terminal).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBuildkite } from '../helpers/fake-buildkite.js';
import { runBkci } from '../helpers/io.js';

const CLIPBOARD = '\u001b]52;c;ZWNobyBwd25lZA==\u0007';
const TITLE = '\u001b]0;owned\u001b\\';
const RESET = '\u001bc';
const SHIFT_OUT = '\u000e';
// Anything but SGR colours and the safe C0 controls (tab, line feed, carriage return, backspace).
const DRIVES = /[\u0000-\u0007\u000b\u000c\u000e-\u001f\u007f-\u009f]|\u001b(?!\[[0-9;:]*m)/;

let bk: FakeBuildkite;
beforeAll(async () => {
  bk = await new FakeBuildkite().start();
  const b = bk.addBuild({
    states: ['failed'],
    number: 7,
    jobs: [
      { name: `tests ${CLIPBOARD}`, state: 'passed', log: 'ok\n' },
      { name: `lint${TITLE}${SHIFT_OUT}`, state: 'failed', log: 'no\n' },
    ],
  });
  b.message = `fix ${RESET}things`;
  bk.agents = [{ id: 'a1', name: `gpu0${CLIPBOARD}`, connection_state: 'connected', meta_data: ['queue=h100'], job: { id: 'j1', name: `job ${TITLE}` } }];
});
afterAll(() => bk.close());

describe('API text on a terminal', () => {
  it('build get, build list and queue status show the text and drop the sequences', async () => {
    for (const argv of [
      ['build', 'get', '7'],
      ['build', 'list'],
      ['queue', 'status', 'h100'],
    ]) {
      const r = await runBkci(argv, { env: { ...bk.env, NO_COLOR: '1' }, tty: true });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, argv.join(' ')).not.toMatch(DRIVES);
      expect(r.stderr, argv.join(' ')).not.toMatch(/\u001b\]|\u001bc/);
    }
    const get = await runBkci(['build', 'get', '7'], { env: { ...bk.env, NO_COLOR: '1' }, tty: true });
    expect(get.stdout).toContain('tests ');
    expect(get.stdout).toContain('lint');
    expect(get.stdout).toContain('fix things');
  });

  it('colour stays on a colour terminal (only SGR sequences remain)', async () => {
    const r = await runBkci(['build', 'list'], { env: bk.env, tty: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(DRIVES);
  });

  it('piped and --json: the API text as it is', async () => {
    const piped = await runBkci(['build', 'get', '7'], { env: bk.env });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toContain(CLIPBOARD);
    const json = await runBkci(['build', 'get', '7', '--json'], { env: bk.env, tty: true });
    expect(JSON.parse(json.stdout).jobs[0].name).toBe(`tests ${CLIPBOARD}`);
  });
});
