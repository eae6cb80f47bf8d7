// The arm64 executable, built on this x64 machine. Checked as a file (an aarch64 ELF for glibc's
// loader, carrying the same blob as the x64 executable apart from V8's code cache, on the same
// pinned Node runtime), and run under qemu-user where it is installed (.ci/run installs Debian's
// qemu-user and the aarch64 C library): it must answer exactly as the x64 executable does.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readElf, readSeaBlob, type SeaBlob } from './sea-blob.js';

const ROOT = join(import.meta.dirname, '../..');
const X64 = join(ROOT, 'dist/exe/bkci-linux-x64');
const ARM64 = join(ROOT, 'dist/exe/bkci-linux-arm64');
const NODE_VERSION = /const NODE_VERSION = '([\d.]+)';/.exec(readFileSync(join(ROOT, 'scripts/build-exe.mjs'), 'utf8'))?.[1];

// qemu-user for aarch64 and a C library tree for it, found as scripts/build-exe.mjs finds them.
const SYSROOT = process.env.QEMU_LD_PREFIX || '/usr/aarch64-linux-gnu';
const QEMU = (process.env.PATH ?? '')
  .split(':')
  .filter(Boolean)
  .map((d) => join(d, 'qemu-aarch64'))
  .find((f) => existsSync(f));
const canRun = QEMU !== undefined && existsSync(join(SYSROOT, 'lib/ld-linux-aarch64.so.1'));

beforeAll(() => {
  // `npm test` builds both before vitest runs; built here when a test run starts without them.
  for (const [exe, arch] of [
    [X64, 'x64'],
    [ARM64, 'arm64'],
  ] as const) {
    if (existsSync(exe)) continue;
    const b = spawnSync(process.execPath, [join(ROOT, 'scripts/build-exe.mjs'), '--arch', arch], { cwd: ROOT, stdio: 'inherit', timeout: 900_000 });
    if (b.status !== 0) throw new Error(`building the ${arch} executable failed (exit ${b.status})`);
  }
}, 1_800_000);

// The Node release the runtime says it is (process.release.sourceUrl, a string in the binary).
const runtimeVersion = (bytes: Buffer) => {
  const at = bytes.indexOf('/download/release/v');
  return at < 0 ? undefined : /^\/download\/release\/v([\d.]+)\/node-v\1\.tar\.gz/.exec(bytes.subarray(at, at + 80).toString('latin1'))?.[1];
};

describe('the arm64 executable, as a file', () => {
  let arm: Buffer;
  let x64: Buffer;
  let armBlob: SeaBlob;
  let x64Blob: SeaBlob;
  beforeAll(() => {
    arm = readFileSync(ARM64);
    x64 = readFileSync(X64);
    armBlob = readSeaBlob(readElf(arm));
    x64Blob = readSeaBlob(readElf(x64));
  });

  it('is a 64-bit little-endian aarch64 ELF executable for glibc, mode 0755, with its sha256 file', () => {
    const elf = readElf(arm);
    expect({ class64: elf.class64, littleEndian: elf.littleEndian, machine: elf.machine, interpreter: elf.interpreter }).toEqual({
      class64: true,
      littleEndian: true,
      machine: 0xb7, // EM_AARCH64
      interpreter: '/lib/ld-linux-aarch64.so.1',
    });
    expect([2, 3]).toContain(elf.type); // ET_EXEC or ET_DYN
    expect(statSync(ARM64).mode & 0o777).toBe(0o755);
    expect(readFileSync(`${ARM64}.sha256`, 'utf8')).toBe(`${createHash('sha256').update(arm).digest('hex')}  bkci-linux-arm64\n`);
    // postject flips the fuse from :0 to :1 when it injects the blob.
    expect(arm.includes(Buffer.from('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1'))).toBe(true);
  });

  it('embeds the pinned Node runtime, the same release as the x64 executable', () => {
    expect(NODE_VERSION).toMatch(/^\d+\.\d+\.\d+$/);
    expect(runtimeVersion(arm)).toBe(NODE_VERSION);
    expect(runtimeVersion(x64)).toBe(NODE_VERSION);
  });

  it('carries the same blob as the x64 executable, apart from the code cache', () => {
    for (const blob of [armBlob, x64Blob]) expect(blob.unread).toBe(0);
    const same = (b: SeaBlob) => ({ magic: b.magic, flags: b.flags, execArgvExtension: b.execArgvExtension, codePath: b.codePath });
    expect(same(armBlob)).toEqual(same(x64Blob));
    // The main script's path as the build gave it: relative, no trace of the build machine.
    expect(armBlob.codePath).toBe('sea-main.cjs');
    expect(armBlob.main.equals(x64Blob.main)).toBe(true);
    expect(armBlob.main.toString('utf8')).toContain('getRawAsset("bkci.cjs")');
    const keys = (b: SeaBlob) => [...b.assets.keys()].filter((k) => k !== 'bkci.cjs.cache').sort();
    expect(keys(armBlob)).toEqual(['bkci.cjs', 'templates/default.j2']);
    expect(keys(x64Blob)).toEqual(keys(armBlob));
    for (const k of keys(armBlob)) expect(armBlob.assets.get(k)!.equals(x64Blob.assets.get(k)!), k).toBe(true);
    expect(armBlob.assets.get('templates/default.j2')!.equals(readFileSync(join(ROOT, 'templates/default.j2')))).toBe(true);
    // The bundle: ASCII, in its CommonJS wrapper (the main script compiles it as read).
    const bundle = armBlob.assets.get('bkci.cjs')!;
    expect(bundle.toString('latin1')).toMatch(/^\(function \(exports, require, module, __filename, __dirname\) \{[^]*\n\}\)$/);
    expect(bundle.every((c) => c < 0x80)).toBe(true);
    // The x64 cache is always made (the host runs it); an arm64 one only where qemu ran the build's
    // training render, and it is V8's data for another architecture, not a copy of the x64 one.
    expect(x64Blob.assets.get('bkci.cjs.cache')?.length).toBeGreaterThan(100_000);
    const armCache = armBlob.assets.get('bkci.cjs.cache');
    if (armCache) expect(armCache.equals(x64Blob.assets.get('bkci.cjs.cache')!)).toBe(false);
  });
});

describe.skipIf(!canRun)('the arm64 executable, run under qemu-user', () => {
  const bare = { PATH: '/nonexistent' };
  const runArm = (args: string[], env: Record<string, string> = bare, input = '') =>
    spawnSync(QEMU!, ['-L', SYSROOT, ARM64, ...args], { cwd: ROOT, env, input, encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 2 ** 20 });
  const runX64 = (args: string[], env: Record<string, string> = bare, input = '') =>
    spawnSync(X64, args, { cwd: ROOT, env, input, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 2 ** 20 });
  const result = (r: ReturnType<typeof spawnSync>) => ({ code: r.status, stdout: r.stdout, stderr: r.stderr });

  it('answers --version', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(result(runArm(['--version']))).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  }, 300_000);

  it('renders the vLLM template byte for byte as the x64 executable does, through its own code cache when it has one', () => {
    const vllm = 'test/fixtures/vllm';
    const set = (JSON.parse(readFileSync(join(ROOT, vllm, 'variable-sets.json'), 'utf8')) as { sets: { defines: [string, string][] }[] }).sets[1]!;
    const args = ['pipeline', 'render', `${vllm}/test-template-ci.j2`, `${vllm}/test-pipeline.yaml`, ...set.defines.flatMap(([k, v]) => ['-D', `${k}=${v}`])];
    const arm = runArm(args, { ...bare, BKCI_LOG_LEVEL: 'debug' });
    expect(arm.status).toBe(0);
    const x64 = runX64(args);
    expect(x64.status).toBe(0);
    expect(arm.stdout.length).toBeGreaterThan(100_000);
    expect(arm.stdout === x64.stdout).toBe(true);
    const hasCache = readSeaBlob(readElf(readFileSync(ARM64))).assets.has('bkci.cjs.cache');
    expect(arm.stderr).toMatch(hasCache ? /code cache.*used/ : /code cache.*none/);
    expect(arm.stderr).not.toMatch(/rejected/);
  }, 300_000);

  it('reports a template error as the x64 executable does', () => {
    const args = ['pipeline', 'render', '-', '-D', 'x=1'];
    const arm = result(runArm(args, bare, '{{ x | nope }}'));
    expect(arm.code).toBe(2);
    expect(arm).toEqual(result(runX64(args, bare, '{{ x | nope }}')));
  }, 300_000);
});
