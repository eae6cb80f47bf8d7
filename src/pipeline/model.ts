// bkci's own model of a Buildkite pipeline (zod), mirroring the official pipeline schema's types
// and Buildkite's server rules: every step object is strict (unknown properties are rejected as the
// server's 422 does). Values the agent interpolates before upload (`$VAR`, `${VAR:-x}`) are accepted
// wherever a number or boolean is expected, and step keys are judged without them. Where the agent
// drops a null before upload (go-pipeline's typed fields with omitempty: a command step's label and
// env, the top-level env) or the server takes one (block and input labels), null is accepted.
import * as z from 'zod';
import { stepKeyProblem } from './step-key.js';
export { UUID_RE } from './step-key.js';

// A string here is only accepted when the agent will interpolate it into the value (`${N:-3}`).
const interpolated = z
  .string()
  .regex(/\$/, { message: 'expected a number or boolean here (a string is accepted only with a $VARIABLE the agent interpolates)' });
const str = z.string();
const strOrList = z.union([str, z.array(str)]);
const boolish = z.union([z.boolean(), z.enum(['true', 'false']), interpolated]);
const int = z.union([z.number().int(), interpolated]);
const obj = z.record(z.string(), z.unknown());

// Judged after the agent's interpolations are removed (step-key.ts); the quick check applies the
// same function beside the JSON Schema, which cannot say it.
const key = z.string().superRefine((k, ctx) => {
  const problem = stepKeyProblem(k);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const nullableStr = z.string().nullable();

const ifExpr = str;
const dependsOn = z.union([z.null(), str, z.array(z.union([str, z.object({ step: str.optional(), allow_failure: boolish.optional() }).strict()]))]);
const agents = z.union([obj, z.array(str)]);
const env = obj;
const secrets = z.union([z.array(str), z.record(z.string(), str)]);
const skip = z.union([z.boolean(), z.string().max(70)]);
const softFail = z.union([boolish, z.array(z.object({ exit_status: z.union([z.literal('*'), z.number().int(), interpolated]).optional() }).passthrough())]);
const ifChanged = z.union([str, z.array(str), z.object({ include: strOrList, exclude: strOrList.optional() }).strict()]);

const notifyIf = { if: ifExpr.optional() };
const notifySimple = z.enum(['github_check', 'github_commit_status']);
const notifyEmail = z.object({ email: str.optional(), ...notifyIf }).strict();
const notifyBasecamp = z.object({ basecamp_campfire: str.optional(), ...notifyIf }).strict();
const notifySlack = z
  .object({ slack: z.union([str, z.object({ channels: z.array(str).optional(), message: str.optional() }).passthrough()]).optional(), ...notifyIf })
  .strict();
const notifyWebhook = z.object({ webhook: str.optional(), ...notifyIf }).strict();
const notifyPagerduty = z.object({ pagerduty_change_event: str.optional(), ...notifyIf }).strict();
const notifyCommitStatus = z.object({ github_commit_status: z.object({ context: str.optional() }).strict().optional(), ...notifyIf }).strict();
// Build level only: blocked_builds_as_pending reports a blocked build as pending (documented 2026-04).
const buildNotifyCommitStatus = z
  .object({
    github_commit_status: z.object({ context: str.optional(), blocked_builds_as_pending: boolish.optional() }).strict().optional(),
    ...notifyIf,
  })
  .strict();
const notifyCheck = z.object({ github_check: obj.optional() }).strict();
export const buildNotify = z.array(
  z.union([notifySimple, notifyEmail, notifyBasecamp, notifySlack, notifyWebhook, notifyPagerduty, buildNotifyCommitStatus, notifyCheck]),
);
const stepNotify = z.array(z.union([notifySimple, notifyBasecamp, notifySlack, notifyCommitStatus, notifyCheck]));

const fieldKey = z.string().regex(/^[a-zA-Z0-9-_]+$/, { message: 'a field key may only contain letters, digits, - and _' });
const textField = z
  .object({ text: str.optional(), key: fieldKey, hint: str.optional(), format: str.optional(), required: boolish.optional(), default: str.optional() })
  .strict();
const selectOption = z.object({ label: str, value: str, hint: str.optional(), required: boolish.optional() }).strict();
const selectField = z
  .object({
    select: str.optional(),
    key: fieldKey,
    default: strOrList.optional(),
    hint: str.optional(),
    multiple: boolish.optional(),
    options: z.array(selectOption).min(1),
    required: boolish.optional(),
  })
  .strict();
const fields = z.array(z.union([textField, selectField]));

const matrixElement = z.union([str, z.number().int(), z.boolean()]);
const matrixSetup = z.union([z.array(matrixElement), z.record(z.string().regex(/^[a-zA-Z0-9_]+$/), z.array(matrixElement))]);
const matrixAdjustment = z
  .object({ with: z.union([z.array(matrixElement), z.record(z.string(), str)]), skip: skip.optional(), soft_fail: softFail.optional() })
  .passthrough();
const matrix = z.union([z.array(matrixElement), z.object({ setup: matrixSetup, adjustments: z.array(matrixAdjustment).optional() }).passthrough()]);

const automaticRetry = z
  .object({
    exit_status: z.union([z.literal('*'), z.number().int(), z.array(z.number().int()), interpolated]).optional(),
    limit: z.union([z.number().int().min(0).max(10), interpolated]).optional(),
    signal: str.optional(),
    signal_reason: z
      .enum(['*', 'none', 'agent_incompatible', 'agent_refused', 'agent_stop', 'cancel', 'process_run_error', 'signature_rejected', 'stack_error'])
      .optional(),
  })
  .strict();
const retry = z
  .object({
    automatic: z.union([boolish, automaticRetry, z.array(automaticRetry)]).optional(),
    manual: z.union([boolish, z.object({ allowed: boolish.optional(), permit_on_passed: boolish.optional(), reason: str.optional() }).strict()]).optional(),
  })
  .strict();
const plugins = z.union([z.array(z.union([str, obj.refine((o) => Object.keys(o).length <= 1, { message: 'a plugin entry names exactly one plugin' })])), obj]);
const cache = z.union([
  str,
  z.array(str),
  z
    .object({
      paths: z.array(str),
      size: z
        .string()
        .regex(/^\d+g$/)
        .optional(),
      name: str.optional(),
    })
    .passthrough(),
]);

// A command step's git checkout (agent 3.136+), also allowed at the top level as the default of
// every step: buildkite/docs command_step.md "Checkout attributes". The agent itself parses skip,
// submodules (booleans), depth (an integer) and ssh_secret; the server the rest.
const checkout = z
  .object({
    skip: boolish.optional(),
    submodules: boolish.optional(),
    lfs: boolish.optional(),
    depth: z.union([z.number().int().min(1), interpolated]).optional(),
    flags: z.object({ clone: str.optional(), fetch: str.optional(), checkout: str.optional(), clean: str.optional() }).strict().optional(),
    sparse: z.object({ paths: strOrList }).strict().optional(),
    // A Buildkite secret's key: starts with a letter, letters, digits and _, not buildkite* or bk*
    // (or a $VARIABLE the agent interpolates).
    ssh_secret: z
      .string()
      .regex(/^(?:[\s\S]*\$[\s\S]*|(?![Bb][Uu][Ii][Ll][Dd][Kk][Ii][Tt][Ee]|[Bb][Kk])[A-Za-z][A-Za-z0-9_]*)$/, {
        message: 'a secret key starts with a letter, holds only letters, digits and _, and does not start with buildkite or bk',
      })
      .optional(),
    // strict/warn (agent v3), strict/off (v4); the agent judges the value.
    commit_verification: str.optional(),
  })
  .strict();

const common = {
  key: key.optional(),
  identifier: key.optional(),
  id: key.optional(),
  if: ifExpr.optional(),
  depends_on: dependsOn.optional(),
  allow_dependency_failure: boolish.optional(),
};

export const commandStep = z
  .object({
    ...common,
    agents: agents.optional(),
    artifact_paths: strOrList.optional(),
    branches: strOrList.optional(),
    cache: cache.optional(),
    cancel_on_build_failing: boolish.optional(),
    checkout: checkout.optional(),
    command: strOrList.optional(),
    commands: strOrList.optional(),
    concurrency: int.optional(),
    concurrency_group: str.optional(),
    concurrency_method: z.enum(['ordered', 'eager']).optional(),
    env: env.nullable().optional(),
    if_changed: ifChanged.optional(),
    image: str.optional(),
    label: nullableStr.optional(),
    name: nullableStr.optional(),
    signature: z
      .object({ algorithm: str.optional(), value: str.optional(), signed_fields: z.array(str).optional() })
      .passthrough()
      .optional(),
    matrix: matrix.optional(),
    notify: stepNotify.optional(),
    parallelism: int.optional(),
    plugins: plugins.optional(),
    soft_fail: softFail.optional(),
    retry: retry.optional(),
    skip: skip.optional(),
    timeout_in_minutes: z.union([z.number().int().min(1), interpolated]).optional(),
    type: z.enum(['script', 'command', 'commands']).optional(),
    priority: int.optional(),
    secrets: secrets.optional(),
  })
  .strict();

const blockedState = z.enum(['passed', 'failed', 'running']);
const blockLike = {
  ...common,
  branches: strOrList.optional(),
  fields: fields.optional(),
  blocked_state: blockedState.optional(),
  label: nullableStr.optional(),
  name: nullableStr.optional(),
  prompt: str.optional(),
  allowed_teams: strOrList.optional(),
};
export const blockStep = z.object({ ...blockLike, block: str.optional(), type: z.literal('block').optional() }).strict();
export const inputStep = z.object({ ...blockLike, input: str.optional(), type: z.literal('input').optional() }).strict();

export const waitStep = z
  .object({
    ...common,
    branches: strOrList.optional(),
    continue_on_failure: boolish.optional(),
    label: z.string().nullable().optional(),
    name: z.string().nullable().optional(),
    type: z.enum(['wait', 'waiter']).optional(),
    wait: z.string().nullable().optional(),
  })
  .strict();

export const triggerStep = z
  .object({
    ...common,
    async: boolish.optional(),
    branches: strOrList.optional(),
    build: z
      .object({ branch: str.optional(), commit: str.optional(), env: env.optional(), message: str.optional(), meta_data: obj.optional() })
      .strict()
      .optional(),
    if_changed: ifChanged.optional(),
    label: str.optional(),
    name: str.optional(),
    // Several triggered builds from one step (documented 2026-04).
    parallelism: int.optional(),
    type: z.literal('trigger').optional(),
    trigger: str,
    skip: skip.optional(),
    soft_fail: softFail.optional(),
  })
  .strict();

export const groupStep = z
  .object({
    depends_on: dependsOn.optional(),
    group: z.string().nullable(),
    if: ifExpr.optional(),
    if_changed: ifChanged.optional(),
    key: key.optional(),
    identifier: key.optional(),
    id: key.optional(),
    label: z.string().nullable().optional(),
    name: z.string().nullable().optional(),
    allow_dependency_failure: boolish.optional(),
    notify: buildNotify.optional(),
    skip: skip.optional(),
    steps: z.array(z.unknown()).min(1, { message: 'a group needs at least one step' }),
  })
  .strict();

export const topLevel = {
  env: env.nullable().optional(),
  checkout: checkout.nullable().optional(),
  agents: agents.optional(),
  notify: buildNotify.optional(),
  image: str.optional(),
  secrets: secrets.optional(),
  priority: int.optional(),
};
export const pipelineTop = z.object({ ...topLevel, steps: z.array(z.unknown()) }).passthrough();

export type StepType = 'command' | 'wait' | 'block' | 'input' | 'trigger' | 'group';
export const STEP_MODELS: Record<StepType, z.ZodObject> = {
  command: commandStep,
  wait: waitStep,
  block: blockStep,
  input: inputStep,
  trigger: triggerStep,
  group: groupStep,
};

// The properties each step type allows, for "did you mean" suggestions.
export function allowedKeys(type: StepType): string[] {
  return Object.keys(STEP_MODELS[type].shape);
}

// The model as JSON Schemas (zod's own translation; the two refinements above, step keys and one
// plugin per entry, have no JSON Schema form and are checked beside it in precheck.ts).
export function modelJsonSchemas(): { top: unknown; steps: Record<StepType, unknown> } {
  const js = (m: z.ZodType) => {
    const { $schema: _drop, ...rest } = z.toJSONSchema(m) as Record<string, unknown>;
    return rest;
  };
  return {
    top: js(pipelineTop),
    steps: Object.fromEntries(Object.entries(STEP_MODELS).map(([k, m]) => [k, js(m)])) as Record<StepType, unknown>,
  };
}
