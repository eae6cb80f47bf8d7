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
