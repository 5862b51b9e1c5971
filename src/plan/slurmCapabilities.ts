/**
 * Which privileges the in-pod Slurm container needs, and what they mean. Slurm 24.11's slurmd
 * clones a new namespace to load the user's login environment for a job submitted with
 * --get-user-env or an --export list (the hub's jobs have both); a container without
 * CAP_SYS_ADMIN gets "clone: Operation not permitted", slurmd dies and the job is requeued. Older
 * Slurm does not need it, so it is granted only where the image's Slurm does.
 *
 * The Slurm version is recorded as an image label when `resources` builds the image (read from
 * the base image's slurmd), and `up` reads it; `manifest` and `check` never ask podman, so for a
 * manifest written by hand the grant is a flag (--slurm-sys-admin).
 */

export const SLURM_VERSION_LABEL = "org.brics-env.slurm.version";

/** The first Slurm release whose slurmd needs CAP_SYS_ADMIN for the hub's jobs. */
const NEEDS_SYS_ADMIN_FROM: readonly [number, number] = [24, 11];

/** The version in `slurmd -V` or `sbatch --version` output ("slurm 24.11.5", "slurm-wlm 22.05.8"). */
export function parseSlurmVersion(text: string): string | undefined {
  return /\bslurm(?:-wlm)?\s+(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

export function slurmNeedsSysAdmin(version: string): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  const [needMajor, needMinor] = NEEDS_SYS_ADMIN_FROM;
  return major > needMajor || (major === needMajor && minor >= needMinor);
}

export function sysAdminReason(version: string): string {
  return (
    `the Slurm container gets CAP_SYS_ADMIN: its Slurm ${version} clones a namespace to load the user's environment ` +
    `for jobs submitted with --get-user-env (Slurm ${NEEDS_SYS_ADMIN_FROM.join(".")} and later); the capability stays inside the pod's namespaces`
  );
}

/** What rootful podman means for what brics-env sets up, one point a line. */
export const ROOTFUL_PODMAN_NOTES: readonly string[] = [
  "podman runs as root here, so:",
  "- a published port (the proxy on 127.0.0.1:8000, the Hub API of external Slurm) is opened by root's podman, and its " +
    "forwarding rules come before the host firewall's INPUT rules: publish only on addresses that only the intended clients reach;",
  "- CAP_SYS_ADMIN, where the Slurm container gets it, is root's capability on this host's kernel, bounded only by the " +
    "container's namespaces and seccomp profile: an escape from the Slurm container (which runs users' jobs) is root on this host;",
  "- rootless podman (as an unprivileged user) confines both to that user; prefer it where the host allows.",
];
