/**
 * What podman holds for an environment once its manifest has been played, by name: what `down`
 * removes, `status` reports and `up` looks up before it plays.
 */
import { containersOf, type Environment } from "./environments.js";
import { podmanContainerName, podName, secretName, volumeName, type SecretKind } from "./names.js";
import { volumeKindsOf } from "./volumes.js";

export interface PodmanObjects {
  readonly pod: string;
  /** Containers podman names `<pod>-<container>` (the pod's infra container goes with the pod). */
  readonly containers: string[];
  /** Named volumes: the data volumes, then the volumes podman creates for each Secret. */
  readonly volumes: string[];
  readonly secrets: string[];
}

function secretKindsOf(env: Environment): SecretKind[] {
  const kinds: SecretKind[] = ["ssh-client-key", env.slurm === "pod" ? "ssh-host-key" : "ssh-known-hosts"];
  if (env.ingress === "zenith") kinds.push("ssh-zenith-client-key", "zenith-client-config");
  return kinds;
}

export function podmanObjectsOf(env: Environment): PodmanObjects {
  const secrets = secretKindsOf(env).map((k) => secretName(k, env.name));
  return {
    pod: podName(env.name),
    containers: containersOf(env).map((c) => podmanContainerName(env.name, c)),
    volumes: [...volumeKindsOf(env).map((k) => volumeName(k, env.name)), ...secrets],
    secrets,
  };
}
