// Each agent's own environment beyond its GPUs: HOME (the agent user's home from /etc/passwd, not
// derived from --build-root), a TMPDIR and XDG_CACHE_HOME of its own (jobs running at once on one
// host race on a shared /tmp and ~/.cache), the host's one git mirrors directory, and thread counts
// from its cpuset (a job that runs `make -j$(nproc)` or leaves OpenMP alone would otherwise start
// a thread per host CPU on the few CPUs it has). Pure; the passwd text is read at the edge.

// The packaged buildkite-agent's home: what useradd gets when the agent user does not exist yet.
export const DEFAULT_AGENT_HOME = '/var/lib/buildkite-agent';

// The home directory of `user` in /etc/passwd text (undefined when the user is not there).
export function passwdHome(text: string, user: string): string | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 7 && f[0] === user && f[5]!.startsWith('/')) return f[5]!.replace(/\/+$/, '') || '/';
  }
  return undefined;
}

// Where the host's shared directories go: beside the build root (`/nvme/builds` → `/nvme`).
export const buildBase = (buildRoot: string): string => buildRoot.replace(/\/builds\/?$/, '') || DEFAULT_AGENT_HOME;
// One per host: the agent's `git-mirrors-path`, shared by every agent (the agent locks each mirror).
export const gitMirrorsDirFor = (buildRoot: string): string => `${buildBase(buildRoot)}/git-mirrors`;
// Per agent, inside its build directory (removed with it by teardown --purge).
export const agentTmpDir = (buildPath: string): string => `${buildPath}/tmp`;
export const agentCacheDir = (buildPath: string): string => `${buildPath}/cache`;

// Variables a job gets from its agent unless it set them itself: the thread counts of build tools
// and OpenMP, from the number of CPUs in the agent's cpuset.
export const THREAD_VARIABLES = ['MAX_JOBS', 'CMAKE_BUILD_PARALLEL_LEVEL', 'OMP_NUM_THREADS'] as const;

export function threadDefaults(cpuCount: number): Record<string, string> {
  return Object.fromEntries(THREAD_VARIABLES.map((v) => [v, String(Math.max(1, cpuCount))]));
}

// The per-agent values in the agent's environment (the EnvironmentFile, re-exported by the hook).
export function agentDirsEnv(buildPath: string, cpuCount: number): Record<string, string> {
  return { BKCI_CPU_COUNT: String(cpuCount), TMPDIR: agentTmpDir(buildPath), XDG_CACHE_HOME: agentCacheDir(buildPath) };
}
