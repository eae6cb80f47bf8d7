// The command tree is built for the group argv names only; everything else still sees all groups.
import { describe, expect, it } from 'vitest';
import { buildProgram, commandGroup } from '../../src/cli/program.js';
import type { Io } from '../../src/util/io.js';
import { runBkci } from '../helpers/io.js';

describe('buildProgram', () => {
  it('finds the group after global flags', () => {
    expect(commandGroup(['pipeline', 'render'])).toBe('pipeline');
    expect(commandGroup(['--debug', '--log-level', 'warn', 'build', 'get', '1'])).toBe('build');
    expect(commandGroup(['--log-level=warn', '-q', 'queue', 'status', 'x'])).toBe('queue');
    expect(commandGroup(['--help'])).toBeUndefined();
    expect(commandGroup(['--', 'node'])).toBe('node');
  });

  it('defines only the named group, or all of them', async () => {
    const io = { env: {}, cwd: process.cwd() } as unknown as Io; // registering commands reads nothing from Io
    const names = async (argv?: string[]) => (await buildProgram(io, argv)).commands.map((c) => c.name()).sort();
    expect(await names(['pipeline', 'render'])).toEqual(['pipeline']);
    expect(await names(['--quiet', 'queue', 'status'])).toEqual(['queue']);
    expect(await names(['help', 'pipeline'])).toEqual(['build', 'fleet', 'node', 'pipeline', 'queue', 'self']);
    expect(await names(['pipelin'])).toEqual(['build', 'fleet', 'node', 'pipeline', 'queue', 'self']);
    expect(await names(['constructor'])).toEqual(['build', 'fleet', 'node', 'pipeline', 'queue', 'self']);
    expect(await names()).toEqual(['build', 'fleet', 'node', 'pipeline', 'queue', 'self']);
  });

  it('still lists every group in the top-level help and suggests across groups', async () => {
    const help = await runBkci(['--help']);
    expect(help.code).toBe(0);
    for (const g of ['pipeline', 'node', 'build', 'queue']) expect(help.stdout).toContain(`  ${g} `);
    const typo = await runBkci(['nodee', 'status']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command 'nodee'[\s\S]*Did you mean node\?/);
  });
});
