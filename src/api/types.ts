// The parts of Buildkite's REST objects bkci reads, checked on arrival so a misbehaving server
// gives a clear error naming the field instead of a crash further on. Unknown fields pass through.
import * as z from 'zod';
import { ApiError } from './client.js';

const str = z.string();
const optStr = z.string().nullish();

export const JobSchema = z.looseObject({
  id: str,
  type: str,
  name: optStr,
  step_key: optStr,
  group_key: optStr,
  state: optStr,
  web_url: optStr,
  log_url: optStr,
  raw_log_url: optStr,
  command: optStr,
  exit_status: z.number().nullish(),
  soft_failed: z.boolean().nullish(),
  retried: z.boolean().nullish(),
  retried_in_job_id: optStr,
  agent_query_rules: z.array(str).nullish(),
  agent: z.looseObject({ name: optStr, hostname: optStr, meta_data: z.unknown().optional() }).nullish(),
  started_at: optStr,
  finished_at: optStr,
});

export const BuildSchema = z.looseObject({
  id: optStr,
  number: z.number().int(),
  state: str,
  blocked_state: optStr,
  web_url: optStr,
  url: optStr,
  branch: optStr,
  commit: optStr,
  message: optStr,
  created_at: optStr,
  started_at: optStr,
  finished_at: optStr,
  meta_data: z.record(str, z.unknown()).nullish(),
  jobs: z.array(JobSchema).nullish(),
});

export const ArtifactSchema = z.looseObject({
  id: optStr,
  job_id: optStr,
  path: str,
  filename: optStr,
  file_size: z.number().nullish(),
  sha1sum: optStr,
  state: optStr,
  download_url: str,
});

export const AgentSchema = z.looseObject({
  id: optStr,
  name: str,
  connection_state: optStr,
  hostname: optStr,
  queue: optStr,
  meta_data: z.array(str).nullish(),
  job: z.looseObject({ id: str, name: optStr, state: optStr }).nullish(),
});

export type Job = z.infer<typeof JobSchema>;
export type Build = z.infer<typeof BuildSchema>;
export type Artifact = z.infer<typeof ArtifactSchema>;
export type Agent = z.infer<typeof AgentSchema>;

// Checks an API answer against a schema; a mismatch names the field path.
export function parseAnswer<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.length ? issue.path.join('.') : '(root)';
  throw new ApiError(
    `the API's answer for ${what} is not what bkci expects: ${path}: ${issue.message}`,
    0,
    undefined,
    'check --api-url points at the Buildkite REST API (…/v2)',
  );
}

// One item of a list answer: parsed, or (the API describes it oddly) reported through `skip` and
// left out, so one bad item does not fail the whole list.
export function parseListItem<T>(schema: z.ZodType<T>, data: unknown, what: string, skip: (why: string) => void): T | undefined {
  try {
    return parseAnswer(schema, data, what);
  } catch (err) {
    skip((err as Error).message);
    return undefined;
  }
}
