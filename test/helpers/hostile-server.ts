// A loopback HTTP server whose every answer is written by the test: slow bodies, endless bodies,
// broken headers, odd statuses. Used where the fake Buildkite (fake-buildkite.ts) is too polite.
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import type { CliRun } from './io.js';

export const TOKEN = 'bkua_hostile0123456789abcdefghij';
export const ORG = 'org';
export const PIPELINE = 'pipe';
export const BUILDS = `/v2/organizations/${ORG}/pipelines/${PIPELINE}/builds`;

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface Hostile {
  origin: string;
  env: Record<string, string>;
  requests: { method: string; path: string }[];
  close(): Promise<void>;
}

// host: the loopback address to listen on ('::1' for IPv6; the origin then reads http://[::1]:port).
export async function hostile(handler: Handler, opts: { host?: string } = {}): Promise<Hostile> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const requests: Hostile['requests'] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push({ method: req.method ?? '', path: url.pathname });
    // A handler that throws answers 599 (a bug in the test, visible in its result).
    void Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(599).end(String(err));
        else res.destroy();
      });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    env: { BUILDKITE_API_TOKEN: TOKEN, BUILDKITE_ORGANIZATION_SLUG: ORG, BUILDKITE_PIPELINE_SLUG: PIPELINE, BUILDKITE_API_URL: `${origin}/v2` },
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// For a test file: `const serve = hostileEach()`, then `srv = await serve(handler)` in a test.
// Every server made through it is closed after each test (its open connections destroyed).
export function hostileEach(): (handler: Handler, opts?: { host?: string }) => Promise<Hostile> {
  const open: Hostile[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  return async (handler, opts) => {
    const s = await hostile(handler, opts);
    open.push(s);
    return s;
  };
}

// The rule for every outcome against a misbehaving server: no internal error, no stack trace, no
// token anywhere, no raw escape character from the server on stderr; a failure is one `bkci:` line
// naming what failed; and with `json`, stdout is whole JSON or nothing (never a part of it).
export function clean(r: CliRun, opts: { json?: boolean } = {}): void {
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stdout + r.stderr).not.toContain(TOKEN);
  expect(r.stderr).not.toMatch(/[\u001b\u0007\u009b]/);
  if (r.code !== 0) expect(r.stderr).toMatch(/^bkci: \S/m);
  if (opts.json && r.stdout.trim() !== '') expect(() => JSON.parse(r.stdout) as unknown, `stdout is not whole JSON: ${r.stdout.slice(-300)}`).not.toThrow();
}

export function json(res: ServerResponse, status: number, data: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(data));
}

export const build = (n: number, state = 'running', extra: Record<string, unknown> = {}) => ({
  id: `b-${n}`,
  number: n,
  state,
  jobs: [{ id: `job-${n}`, type: 'script', name: 'tests', state: state === 'running' ? 'running' : state }],
  ...extra,
});

// A port nothing listens on (bound, then closed).
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export const BIN = join(import.meta.dirname, '../../dist/bundle/bin.js');

export interface Proc {
  pid: number;
  stdout: () => string;
  stderr: () => string;
  // Resolves when stderr (or stdout) has matched `re`, rejects after `ms`.
  waitFor(re: RegExp, ms?: number): Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

// The built bkci as a child process (its own, real signal handling).
export function spawnBkci(argv: string[], env: Record<string, string>, cwd?: string): Proc {
  const child = spawn(process.execPath, [BIN, ...argv], { env: { PATH: process.env.PATH ?? '', ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    waiters.forEach((w) => w());
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
    waiters.forEach((w) => w());
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return {
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exit,
    kill: (s) => child.kill(s),
    waitFor: (re, ms = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(err) || re.test(out)) {
            clearTimeout(t);
            resolve();
          }
        };
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`timed out waiting for ${re}; stderr: ${err}`));
        }, ms);
        waiters.push(check);
        check();
        void exit.then(() => {
          check();
          clearTimeout(t);
          if (!re.test(err) && !re.test(out)) reject(new Error(`exited before ${re}; stderr: ${err}`));
        });
      }),
  };
}

// A loopback TCP server that answers each connection's first bytes with `reply` (raw bytes, not
// necessarily HTTP: a broken proxy, another protocol) and closes it.
export async function rawServer(
  reply: string | Buffer,
): Promise<{ origin: string; env: Record<string, string>; connections: () => number; close(): Promise<void> }> {
  const { createServer: createNetServer } = await import('node:net');
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
    sock.once('data', () => sock.end(reply));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    env: { BUILDKITE_API_TOKEN: TOKEN, BUILDKITE_ORGANIZATION_SLUG: ORG, BUILDKITE_PIPELINE_SLUG: PIPELINE, BUILDKITE_API_URL: `${origin}/v2` },
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
