/**
 * Names of everything podman holds for an environment. These follow the spec's README
 * (users type them into `podman volume rm …` and friends), so they keep the environment
 * name verbatim, underscores included.
 */
import { join } from "node:path";
import type { ContainerName, EnvName, Stage } from "./environments.js";

export const DEPLOY_CONFIGMAP_NAME = "deploy-config";
export const DEPLOY_CONFIGMAP_FILE = "deploy-configmap.yaml";
export const COMBINED_MANIFEST_FILE = "combined.yaml";

/** Where kube play keeps its version-adapted copy of the manifest (old podman only). */
export function playWorkDir(deployDir: string): string {
  return join(deployDir, ".podman-play");
}

/** The most data Kubernetes accepts in one ConfigMap or Secret: 1 MiB. */
export const MAX_OBJECT_BYTES = 1024 * 1024;

export function podName(env: EnvName): string {
  return `jupyterhub-slurm-${env}`;
}

/** podman names a kube-played container `<pod>-<container>`. */
export function podmanContainerName(env: EnvName, container: ContainerName): string {
  return `${podName(env)}-${container}`;
}

/**
 * jupyterhub_root: the hub's configuration (brought in line with the repository by `up`), state
 * and logs; slurm_root: the in-pod Slurm's logs and spool; slurm_home: the in-pod Slurm's /home,
 * where users' files and their jobs' output live, so that they outlive the container.
 */
export type VolumeKind = "jupyterhub_root" | "slurm_root" | "slurm_home";

export function volumeName(kind: VolumeKind, env: EnvName): string {
  return `${kind}_${env}`;
}

export type SecretKind =
  | "ssh-client-key"
  | "ssh-host-key"
  | "ssh-known-hosts"
  | "ssh-zenith-client-key"
  | "zenith-client-config";

export function secretName(kind: SecretKind, env: EnvName): string {
  return `jupyterhub-slurm-${kind}-${env}`;
}

export type ImageName = "brics_jupyterhub" | "brics_slurm";

export function imageRef(image: ImageName, stage: Stage): string {
  return `localhost/${image}:${stage === "dev" ? "dev-latest" : "latest"}`;
}

/**
 * Containers in a pod share one hostname, which becomes Slurm's node name and the exec host
 * batchspawner reads from squeue; underscores are not valid in host names, so map them.
 */
export function podHostname(env: EnvName): string {
  return podName(env).replaceAll("_", "-");
}

/**
 * The Slurm job name of every user server: the batch script's `--job-name` (brics_hub/slurm.py;
 * a unit test keeps the two equal), by which brics-env finds the hub's jobs in an in-pod queue.
 */
export const SPAWNER_JOB_NAME = "spawner-jupyterhub";
