/**
 * One container of a running pod, recreated on its own. `podman kube play --replace` recreates the
 * whole pod (an in-pod Slurm's slurmd and the jobs it runs with it), so `up` applies a change to a
 * running environment by recreating only the containers it concerns, with `podman create --pod`,
 * from the same manifest objects kube play reads: this module turns a manifest container into that
 * command, and tells what differs between it and the container that runs.
 *
 * Mounts are taken from the manifest as adapted with every workaround on (HOST_PATH_QUIRKS): Secret
 * keys as files and volume sub-paths as host paths, which `podman create` mounts on every version.
 */
import { isDeployConfigKey } from "./deployConfig.js";
import type { ContainerName, Environment } from "./environments.js";
import { specAnnotation, type Container, type Pod, type PublishedPort } from "./manifest.js";
import { podmanContainerName, podName } from "./names.js";
import type { ConfigValues } from "./validate.js";

export interface Bind {
  readonly source: string;
  readonly destination: string;
  readonly readOnly: boolean;
  /** hostPath DirectoryOrCreate: the caller creates the directory first. */
  readonly createDirectory: boolean;
}

export interface DesiredContainer {
  readonly container: ContainerName;
  /** podman's name for it: `<pod>-<container>`. */
  readonly name: string;
  readonly image: string;
  readonly args: readonly string[];
  /** The environment the manifest gives it, ConfigMap references resolved (absent optional keys left out). */
  readonly env: ReadonlyArray<readonly [string, string]>;
  /** Its variables whose values come from the deploy ConfigMap, by variable: the key. */
  readonly fromConfigMap: ReadonlyMap<string, string>;
  readonly binds: readonly Bind[];
  readonly capAdd: readonly string[];
  readonly restart: "always" | "on-failure" | "no";
  /** The hash of its definition (manifest.ts containerSpecHash), which the manifest's Pod annotates. */
  readonly specHash: string;
}

const RESTART: Readonly<Record<Pod["spec"]["restartPolicy"], DesiredContainer["restart"]>> = {
  Always: "always",
  OnFailure: "on-failure",
  Never: "no",
};

function resolveEnv(c: Container, config: ConfigValues): { env: Array<[string, string]>; fromConfigMap: Map<string, string> } {
  const env: Array<[string, string]> = [];
  const fromConfigMap = new Map<string, string>();
  for (const e of c.env) {
    if (e.value !== undefined) {
      env.push([e.name, e.value]);
      continue;
    }
    const ref = e.valueFrom?.configMapKeyRef;
    if (ref === undefined) continue;
    fromConfigMap.set(e.name, ref.key);
    const value = isDeployConfigKey(ref.key) ? config[ref.key] : undefined;
    if (value !== undefined) env.push([e.name, value]);
    else if (!ref.optional) throw new Error(`the deploy ConfigMap has no value for ${ref.key}, which ${c.name} requires`);
  }
  return { env, fromConfigMap };
}

/**
 * The containers of `adaptedPod` (the Pod adapted with HOST_PATH_QUIRKS) as podman create would
 * make them, each with its definition's hash from the annotations of `pod` (combined.yaml's Pod).
 */
export function desiredContainers(env: Environment, pod: Pod, adaptedPod: Pod, config: ConfigValues): DesiredContainer[] {
  const volumes = new Map(adaptedPod.spec.volumes.map((v) => [v.name, v]));
  return adaptedPod.spec.containers.map((c) => {
    const binds = c.volumeMounts.map((m): Bind => {
      const hostPath = volumes.get(m.name)?.hostPath;
      if (hostPath === undefined || (m.subPath !== undefined && m.subPath !== "")) {
        throw new Error(`mount ${m.mountPath} of ${c.name} is not a host path after adaptation; it cannot be recreated with podman create`);
      }
      return { source: hostPath.path, destination: m.mountPath, readOnly: m.readOnly, createDirectory: hostPath.type === "DirectoryOrCreate" };
    });
    const specHash = pod.metadata.annotations?.[specAnnotation(c.name)];
    if (specHash === undefined) throw new Error(`the manifest's Pod has no ${specAnnotation(c.name)} annotation`);
    const { env: resolved, fromConfigMap } = resolveEnv(c, config);
    return {
      container: c.name,
      name: podmanContainerName(env.name, c.name),
      image: c.image,
      args: c.args ?? [],
      env: resolved,
      fromConfigMap,
      binds,
      capAdd: c.securityContext?.capabilities?.add ?? [],
      restart: RESTART[adaptedPod.spec.restartPolicy],
      specHash,
    };
  });
}

/**
 * `podman create` arguments for one container, and the environment podman must run with: values
 * are passed as `--env NAME` (podman takes the value from its own environment), so none of them,
 * passwords included, is ever on a command line.
 */
export function createCommand(env: Environment, d: DesiredContainer): { args: string[]; env: Record<string, string> } {
  const args = ["create", "--pod", podName(env.name), "--name", d.name, "--restart", d.restart];
  args.push("--annotation", `${specAnnotation(d.container)}=${d.specHash}`);
  for (const [name] of d.env) args.push("--env", name);
  for (const b of d.binds) args.push("--volume", `${b.source}:${b.destination}:${b.readOnly ? "ro" : "rw"}`);
  for (const cap of d.capAdd) args.push("--cap-add", cap);
  args.push(d.image, ...d.args);
  return { args, env: Object.fromEntries(d.env) };
}

// ---------------------------------------------------------------------------------------------
// What differs between a desired container and the running one

export interface RunningContainer {
  readonly state: string;
  readonly imageId: string;
  /** `NAME=value` entries of its environment (the image's and the manifest's). */
  readonly env: readonly string[];
  readonly annotations: Readonly<Record<string, string>>;
}

export type ChangeReason =
  | { readonly kind: "absent" }
  | { readonly kind: "not-running"; readonly state: string }
  | { readonly kind: "definition" }
  | { readonly kind: "image"; readonly image: string }
  /** ConfigMap keys whose values changed (never the values: some are passwords). */
  | { readonly kind: "config"; readonly keys: readonly string[] };

/** Why `running` is not what `d` asks for; empty when it is. `imageId`: the id `d.image` has now. */
export function containerChanges(d: DesiredContainer, running: RunningContainer | undefined, imageId: string | undefined): ChangeReason[] {
  if (running === undefined) return [{ kind: "absent" }];
  const reasons: ChangeReason[] = [];
  if (running.state !== "running") reasons.push({ kind: "not-running", state: running.state });
  // A container made before its definition was annotated counts as changed once.
  if (running.annotations[specAnnotation(d.container)] !== d.specHash) reasons.push({ kind: "definition" });
  if (imageId !== undefined && running.imageId !== imageId) reasons.push({ kind: "image", image: d.image });
  const now = new Map<string, string>();
  for (const entry of running.env) {
    const eq = entry.indexOf("=");
    if (eq > 0) now.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  const wanted = new Map(d.env);
  const keys = [...d.fromConfigMap].filter(([variable]) => now.get(variable) !== wanted.get(variable)).map(([, key]) => key);
  if (keys.length > 0) reasons.push({ kind: "config", keys: keys.sort() });
  return reasons;
}

/** Whether only starting it again is needed (it stopped, nothing about it changed). */
export function onlyStopped(reasons: readonly ChangeReason[]): boolean {
  return reasons.length > 0 && reasons.every((r) => r.kind === "not-running");
}

/** What `up` does to a running pod's container: keep it, start it again, restart it, or make it anew. */
export type ContainerAction = "keep" | "start" | "restart" | "recreate";

/**
 * The action for one container, from what changed about it and (the hub's only) which of its
 * configuration files changed. A container alone in its pod is made anew rather than restarted:
 * podman stops a played pod whose last container stopped, and the clean-up that decides so runs
 * after a `podman restart` has started the container again (podman 4.3.1: 5 restarts in 6 left
 * the pod exited), whereas a removed container's clean-up finds nothing to stop.
 */
export function containerAction(container: ContainerName, reasons: readonly ChangeReason[], hubFiles: readonly string[], aloneInPod: boolean): ContainerAction {
  if (reasons.length > 0) return onlyStopped(reasons) ? "start" : "recreate";
  if (container !== "jupyterhub" || hubFiles.length === 0) return "keep";
  return aloneInPod ? "recreate" : "restart";
}

export function describeReasons(reasons: readonly ChangeReason[]): string {
  return reasons
    .map((r) => {
      switch (r.kind) {
        case "absent":
          return "it is not there";
        case "not-running":
          return `it is ${r.state}`;
        case "definition":
          return "its definition in the manifest changed (mounts, keys, settings)";
        case "image":
          return `image ${r.image} changed`;
        case "config":
          return `deploy-config ${r.keys.length === 1 ? "key" : "keys"} ${r.keys.join(", ")} changed`;
      }
    })
    .join("; ");
}

/** Whether the pod publishes exactly `wanted` (ports belong to the pod: a change needs a new one). */
export function samePorts(wanted: readonly PublishedPort[], published: readonly PublishedPort[]): boolean {
  const key = (p: PublishedPort) => `${p.hostIP}:${p.hostPort}:${p.containerPort}`;
  const a = wanted.map(key).sort();
  const b = published.map(key).sort();
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
