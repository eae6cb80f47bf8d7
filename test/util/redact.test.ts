import { describe, expect, it } from 'vitest';
import { redact, registerSecret } from '../../src/util/redact.js';

describe('redact', () => {
  it('removes registered values and token-shaped text', () => {
    registerSecret('correct-horse-battery');
    expect(redact('sent correct-horse-battery twice: correct-horse-battery')).toBe('sent [REDACTED] twice: [REDACTED]');
    expect(redact('token bkua_0123456789abcdefABCDEF leaked')).toBe('token [REDACTED] leaked');
    expect(redact('authorization: Bearer abc.def-123')).toBe('authorization: Bearer [REDACTED]');
    expect(redact('{"token":"s3cr3t-value","password": "hunter22"}')).toBe('{"token":"[REDACTED]","password": "[REDACTED]"}');
    expect(redact('secret=PROD_DB_2024')).toBe('secret=[REDACTED]');
  });

  it("keeps the name of Buildkite's and bkci's variables where a message names one", () => {
    expect(redact('no API token: BUILDKITE_API_TOKEN is not set')).toBe('no API token: BUILDKITE_API_TOKEN is not set');
    expect(redact('agent token: BUILDKITE_AGENT_TOKEN, or token=BKCI_X')).toBe('agent token: BUILDKITE_AGENT_TOKEN, or token=BKCI_X');
    expect(redact('token: BUILDKITE_API_TOKEN_abc123')).toBe('token: [REDACTED]');
  });
});

describe('redact keeps words that only look like keys', () => {
  it('a token-file path ending in token is not a key: the next word stays', () => {
    expect(redact('--token-file /root/agent-token: cannot read it (ENOENT)')).toBe('--token-file /root/agent-token: cannot read it (ENOENT)');
    expect(redact('--token-file /srv/token: cannot read it (EACCES)')).toBe('--token-file /srv/token: cannot read it (EACCES)');
    expect(redact('reading the token: permission denied')).toBe('reading the token: permission denied');
    expect(redact('wrote /etc/bkci/token.env: 0600')).toBe('wrote /etc/bkci/token.env: 0600');
  });

  it('still redacts values after keys, in every form', () => {
    expect(redact('BUILDKITE_AGENT_TOKEN=abcdef123456 started')).toBe('BUILDKITE_AGENT_TOKEN=[REDACTED] started');
    expect(redact('token: 8f1c2e9a7b3d4c5e6f7a')).toBe('token: [REDACTED]');
    expect(redact("password='hunter22'")).toBe("password='[REDACTED]'");
    expect(redact('{"agent_token" : "abcdefgh"}')).toBe('{"agent_token" : "[REDACTED]"}');
    expect(redact('secret: averyveryverylongsecretwithoutdigits')).toBe('secret: [REDACTED]');
    expect(redact('bkci build --token=abcdefgh')).toBe('bkci build --token=[REDACTED]');
  });
});
