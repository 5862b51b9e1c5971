/**
 * The Kubernetes objects of an environment (its Secrets and its Pod) as typed data, and their
 * rendering as the multi-document YAML that `podman kube play` runs. Everything is valid
 * Kubernetes too (apiVersion v1, DNS-1123 names where Kubernetes wants them), so the manifest
 * could go to a cluster; podman-specific names (volumes with underscores) appear only as claim
 * names, which podman maps to its named volumes.
 */
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { stringify } from "yaml";
import { keysUsedBy } from "./deployConfig.js";
import { containersOf, type ContainerName, type Environment } from "./environments.js";
import { HUB_SETTINGS_VAR, hubSettingsJson } from "./hubSettings.js";
import { zenithClientImage } from "./images.js";
import {
  DEPLOY_CONFIGMAP_NAME,
  imageRef,
  podHostname,
  podName,
  secretName,
  type SecretKind,
} from "./names.js";
import { volumesOf } from "./volumes.js";
import { ZENITH_CLIENT_ARGS, ZENITH_CLIENT_CONFIG_PATH, ZENITH_CLIENT_KEY_PATH, zenithClientEnv } from "./zenithClientConfig.js";

// ---------------------------------------------------------------------------------------------
// Just enough of the Kubernetes API types for what we emit.

export interface ObjectMeta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface Secret {
  apiVersion: "v1";
  kind: "Secret";
  metadata: ObjectMeta;
  type: "Opaque";
  /** base64-encoded values; `data` rather than `stringData`, which old podman releases mishandle. */
  data: Record<string, string>;
}

export interface ConfigMapKeySelector {
  name: string;
  key: string;
  optional: boolean;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { configMapKeyRef: ConfigMapKeySelector };
}

export interface ContainerPort {
  containerPort: number;
  hostIP?: string;
  hostPort?: number;
  protocol: "TCP";
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly: boolean;
}

export interface SecurityContext {
  capabilities?: { add?: string[] };
}

export interface Container {
  name: ContainerName;
  image: string;
  /** Replaces the image's CMD; its ENTRYPOINT stays. */
  args?: string[];
  env: EnvVar[];
  ports?: ContainerPort[];
  volumeMounts: VolumeMount[];
  securityContext?: SecurityContext;
}

export interface Volume {
  name: string;
  persistentVolumeClaim?: { claimName: string };
  secret?: { secretName: string; defaultMode?: number; optional?: boolean };
  /** Only in the copy adapted for old podman (podmanQuirks.ts), never in combined.yaml. */
  hostPath?: { path: string; type?: "Directory" | "File" | "DirectoryOrCreate" };
}

export type RestartPolicy = "Always" | "OnFailure" | "Never";

export interface PodSpec {
  hostname: string;
  restartPolicy: RestartPolicy;
  containers: Container[];
  volumes: Volume[];
}

export interface Pod {
  apiVersion: "v1";
  kind: "Pod";
  metadata: ObjectMeta;
  spec: PodSpec;
}

export type ManifestObject = Secret | Pod;

// ---------------------------------------------------------------------------------------------
// Inputs

export interface KeyPair {
  /** OpenSSH private key text. */
  readonly private: string;
  /** Public key line (`<type> <base64> [comment]`). */
  readonly public: string;
}

export interface KeyMaterial {
  /** Hub -> Slurm host (generated for in-pod Slurm, the user's for external Slurm). */
  readonly clientKey: KeyPair;
  /** In-pod Slurm only: the Slurm container's sshd host key. */
  readonly hostKey?: KeyPair;
  /** External Slurm only: the user's ssh_known_hosts text. */
  readonly knownHosts?: string;
  /** Zenith ingress only. */
  readonly zenithKey?: KeyPair;
  /** Zenith ingress only: text of zenith_client_config.yaml. */
  readonly zenithConfig?: string;
}

export interface ManifestOptions {
  readonly keys: KeyMaterial;
  /** The deploy ConfigMap's hubConnectUrl; needed for external Slurm (it decides where 8081 is published). */
  readonly hubConnectUrl?: string;
  /**
   * The address hubConnectUrl's host name resolves to (the manifest command looks it up); the
   * Hub API is published on that address only. Not needed when the URL holds an IP address.
   */
  readonly hubConnectAddress?: string;
  /**
   * `[ip:]hostPort:containerPort` entries, as podman's --publish takes them, for the hub
   * container. An entry for a container port replaces what the environment would publish there.
   */
  readonly publish?: readonly string[];
  /**
   * In-pod Slurm: give the Slurm container CAP_SYS_ADMIN, which Slurm 24.11 and later need for the
   * hub's jobs (slurmCapabilities.ts). `up` decides from the image; by hand, `manifest --slurm-sys-admin`.
   */
  readonly grantSlurmSysAdmin?: boolean;
  /** Zenith client image (images.ts zenithClientImage()); defaults to the pinned one. */
  readonly zenithClientImage?: string;
  /** Defaults to Always, as for a service. */
  readonly restartPolicy?: RestartPolicy;
}

export class ManifestInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestInputError";
  }
}

// ---------------------------------------------------------------------------------------------
// Ports

export const PROXY_PORT = 8000;
export const HUB_API_PORT = 8081;

export interface PublishedPort {
  readonly hostIP: string;
  readonly hostPort: number;
  readonly containerPort: number;
}

function port(text: string, what: string, entry: string): number {
  if (!/^[1-9][0-9]{0,4}$/.test(text) || Number(text) > 65535) {
    throw new ManifestInputError(`publish entry ${JSON.stringify(entry)}: ${what} ${JSON.stringify(text)} is not a port number (1-65535)`);
  }
  return Number(text);
}

/** Parses `ip:hostPort:containerPort` (IPv6 in brackets) or `hostPort:containerPort` (all addresses). */
export function parsePublish(entry: string): PublishedPort {
  const m = /^(?:(\[[0-9A-Fa-f:.]+\]|[0-9.]+):)?([^:]+):([^:]+)$/.exec(entry);
  if (m === null) {
    throw new ManifestInputError(`publish entry ${JSON.stringify(entry)} is not of the form ip:hostPort:containerPort`);
  }
  const ip = m[1] === undefined ? "0.0.0.0" : m[1].replace(/^\[(.*)\]$/, "$1");
  if (isIP(ip) === 0) throw new ManifestInputError(`publish entry ${JSON.stringify(entry)}: ${JSON.stringify(ip)} is not an IP address`);
  return { hostIP: ip, hostPort: port(m[2]!, "host port", entry), containerPort: port(m[3]!, "container port", entry) };
}

/**
 * Where the Hub API must be published for user servers outside the pod: the address and port of
 * hubConnectUrl, and nowhere else. A host name is published on the address it resolves to
 * (`resolvedAddress`); one that does not resolve is refused, never published on every address.
 */
export function hubApiPublishFromUrl(hubConnectUrl: string, resolvedAddress?: string): PublishedPort {
  let url: URL;
  try {
    url = new URL(hubConnectUrl);
  } catch {
    throw new ManifestInputError(`hubConnectUrl ${JSON.stringify(hubConnectUrl)} is not a URL`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const hostPort = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  const hostIP = isIP(host) !== 0 ? host : resolvedAddress;
  if (hostIP === undefined) {
    throw new ManifestInputError(
      `hubConnectUrl ${JSON.stringify(hubConnectUrl)}: ${host} does not resolve to an address on this host, and the Hub API ` +
        `(port ${HUB_API_PORT}) is published only on the address user servers connect to. Write that IP address in ` +
        `hubConnectUrl (e.g. http://10.0.0.5:${hostPort}), add ${host} to /etc/hosts, or publish it yourself with ` +
        `--publish <ip>:${hostPort}:${HUB_API_PORT} (--publish 0.0.0.0:${hostPort}:${HUB_API_PORT} for every address)`,
    );
  }
  return { hostIP, hostPort, containerPort: HUB_API_PORT };
}

/** Without Zenith, browsers on this host reach the proxy; nobody else. */
const DEFAULT_PROXY_PUBLISH: PublishedPort = { hostIP: "127.0.0.1", hostPort: PROXY_PORT, containerPort: PROXY_PORT };

/** Where a browser reaches the proxy on the host, or undefined behind Zenith. */
export function publishedProxyPort(env: Environment, publish: readonly string[] = []): PublishedPort | undefined {
  const override = publish.map(parsePublish).find((p) => p.containerPort === PROXY_PORT);
  if (override !== undefined) return override;
  return env.ingress === "published-port" ? DEFAULT_PROXY_PUBLISH : undefined;
}

/** The hub container's published ports for `env`, overrides applied, sorted by container port. */
export function publishedPorts(env: Environment, opts: Pick<ManifestOptions, "hubConnectUrl" | "hubConnectAddress" | "publish">): PublishedPort[] {
  const byContainerPort = new Map<number, PublishedPort>();
  if (env.ingress === "published-port") byContainerPort.set(PROXY_PORT, DEFAULT_PROXY_PUBLISH);
  const overrides = (opts.publish ?? []).map(parsePublish);
  if (env.slurm === "external" && !overrides.some((p) => p.containerPort === HUB_API_PORT)) {
    if (opts.hubConnectUrl === undefined) {
      throw new ManifestInputError(`${env.name} runs Slurm outside the pod, so the Hub API port needs hubConnectUrl (or a publish entry for ${HUB_API_PORT})`);
    }
    byContainerPort.set(HUB_API_PORT, hubApiPublishFromUrl(opts.hubConnectUrl, opts.hubConnectAddress));
  }
  for (const p of overrides) byContainerPort.set(p.containerPort, p);
  return [...byContainerPort.values()].sort((a, b) => a.containerPort - b.containerPort);
}

// ---------------------------------------------------------------------------------------------
// Secrets

const LOCALHOST_PATTERNS = "localhost,127.0.0.1,::1";

const withNewline = (s: string) => (s.endsWith("\n") ? s : `${s}\n`);
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

function secret(kind: SecretKind, env: Environment, data: Record<string, string>): Secret {
  const encoded: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) encoded[k] = b64(v);
  return { apiVersion: "v1", kind: "Secret", metadata: { name: secretName(kind, env.name) }, type: "Opaque", data: encoded };
}

/** The four entries of an SSH key Secret (ARCHITECTURE.md, "Secrets in combined.yaml"). */
function sshKeyData(pair: KeyPair): Record<string, string> {
  const pub = pair.public.trim();
  return {
    ssh_key: withNewline(pair.private),
    "ssh_key.pub": `${pub}\n`,
    localhost_known_hosts: `${LOCALHOST_PATTERNS} ${pub}\n`,
    localhost_authorized_keys: `from="${LOCALHOST_PATTERNS}" ${pub}\n`,
  };
}

function need<T>(value: T | undefined, what: string, env: Environment): T {
  if (value === undefined) throw new ManifestInputError(`${env.name} needs ${what}`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// The manifest

const PRIVATE_MODE = 0o600;
const PUBLIC_MODE = 0o644;

/** Pod-spec name of a Secret's volume: the Secret kind, which is already a DNS-1123 label. */
const secretVolume = (kind: SecretKind) => kind;

/** Secrets first (the Pod refers to them), then the Pod. */
export function buildManifest(env: Environment, opts: ManifestOptions): ManifestObject[] {
  const keys = opts.keys;
  const secrets: Secret[] = [secret("ssh-client-key", env, sshKeyData(keys.clientKey))];
  const secretModes: Array<[SecretKind, number]> = [["ssh-client-key", PRIVATE_MODE]];
  if (env.slurm === "pod") {
    secrets.push(secret("ssh-host-key", env, sshKeyData(need(keys.hostKey, "an SSH host key for the Slurm container", env))));
    secretModes.push(["ssh-host-key", PRIVATE_MODE]);
  } else {
    const knownHosts = need(keys.knownHosts, "the ssh_known_hosts file", env);
    secrets.push(secret("ssh-known-hosts", env, { ssh_known_hosts: withNewline(knownHosts) }));
    secretModes.push(["ssh-known-hosts", PUBLIC_MODE]);
  }
  if (env.ingress === "zenith") {
    const zk = need(keys.zenithKey, "the Zenith client SSH key pair", env);
    secrets.push(secret("ssh-zenith-client-key", env, { ssh_key: withNewline(zk.private), "ssh_key.pub": `${zk.public.trim()}\n` }));
    secrets.push(secret("zenith-client-config", env, { "client.yaml": need(keys.zenithConfig, "the Zenith client configuration", env) }));
    secretModes.push(["ssh-zenith-client-key", PRIVATE_MODE], ["zenith-client-config", PRIVATE_MODE]);
  }

  const volumes = volumesOf(env); // owners do not matter here; defaults cannot fail
  const podVolumes: Volume[] = [
    ...volumes.map((v) => ({ name: v.podVolumeName, persistentVolumeClaim: { claimName: v.name } })),
    ...secretModes.map(([kind, mode]) => ({
      name: secretVolume(kind),
      // podman 4.3.1's kube play segfaults on a secret volume without `optional`.
      secret: { secretName: secretName(kind, env.name), defaultMode: mode, optional: false },
    })),
  ];
  const volumeMountsFor = (container: ContainerName): VolumeMount[] =>
    volumes.flatMap((v) =>
      v.mounts
        .filter((m) => m.container === container)
        .map((m) => ({ name: v.podVolumeName, mountPath: m.mountPath, subPath: m.subPath, readOnly: m.readOnly })),
    );
  // podman < 4.8 ignores defaultMode, so private keys are mounted writable and the containers
  // fix their modes at start.
  const fromSecret = (kind: SecretKind, subPath: string, mountPath: string, readOnly: boolean): VolumeMount => ({
    name: secretVolume(kind),
    mountPath,
    subPath,
    readOnly,
  });

  const configEnv = (filter: (slurmContainer: boolean) => boolean): EnvVar[] =>
    keysUsedBy(env)
      .filter((s) => filter(s.slurmContainer === true))
      .map((s) => ({
        name: s.envVar,
        valueFrom: { configMapKeyRef: { name: DEPLOY_CONFIGMAP_NAME, key: s.key, optional: s.usage(env) === "optional" } },
      }));

  const containers: Container[] = [];
  for (const name of containersOf(env)) {
    if (name === "jupyterhub") {
      const ports = publishedPorts(env, opts);
      containers.push({
        name,
        image: imageRef("brics_jupyterhub", env.stage),
        env: [
          ...configEnv(() => true),
          // The environment and the keys above, for the hub module (hubSettings.ts).
          { name: HUB_SETTINGS_VAR, value: hubSettingsJson(env) },
          // Identity tokens routed through Zenith can exceed Node's default 8 KiB header limit
          // in configurable-http-proxy.
          { name: "NODE_OPTIONS", value: "--max-http-header-size=32768" },
        ],
        ...(ports.length > 0 ? { ports: ports.map((p) => ({ containerPort: p.containerPort, hostIP: p.hostIP, hostPort: p.hostPort, protocol: "TCP" as const })) } : {}),
        volumeMounts: [
          ...volumeMountsFor(name),
          fromSecret("ssh-client-key", "ssh_key", "/srv/jupyterhub/ssh_key", false),
          fromSecret("ssh-client-key", "ssh_key.pub", "/srv/jupyterhub/ssh_key.pub", true),
          env.slurm === "pod"
            ? fromSecret("ssh-host-key", "localhost_known_hosts", "/etc/ssh/ssh_known_hosts", true)
            : fromSecret("ssh-known-hosts", "ssh_known_hosts", "/etc/ssh/ssh_known_hosts", true),
        ],
      });
    } else if (name === "slurm") {
      containers.push({
        name,
        image: imageRef("brics_slurm", env.stage),
        env: configEnv((forSlurm) => forSlurm),
        volumeMounts: [
          ...volumeMountsFor(name),
          fromSecret("ssh-host-key", "ssh_key", "/etc/ssh/ssh_host_ed25519_key", false),
          fromSecret("ssh-host-key", "ssh_key.pub", "/etc/ssh/ssh_host_ed25519_key.pub", true),
          fromSecret("ssh-client-key", "localhost_authorized_keys", "/home/jupyterspawner/.ssh/authorized_keys", false),
        ],
        // Only where the image's Slurm needs it (slurmCapabilities.ts).
        ...(opts.grantSlurmSysAdmin === true ? { securityContext: { capabilities: { add: ["SYS_ADMIN"] } } } : {}),
      });
    } else {
      containers.push({
        name,
        image: opts.zenithClientImage ?? zenithClientImage(),
        // Explicit rather than the image's default command, which in older images only prints help.
        args: [...ZENITH_CLIENT_ARGS],
        env: zenithClientEnv(PROXY_PORT),
        volumeMounts: [
          fromSecret("zenith-client-config", "client.yaml", ZENITH_CLIENT_CONFIG_PATH, true),
          fromSecret("ssh-zenith-client-key", "ssh_key", ZENITH_CLIENT_KEY_PATH, true),
          fromSecret("ssh-zenith-client-key", "ssh_key.pub", `${ZENITH_CLIENT_KEY_PATH}.pub`, true),
        ],
      });
    }
  }

  const pod: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: podName(env.name) },
    spec: {
      hostname: podHostname(env.name),
      restartPolicy: opts.restartPolicy ?? "Always",
      containers,
      volumes: podVolumes,
    },
  };
  pod.metadata.annotations = Object.fromEntries(containers.map((c) => [specAnnotation(c.name), containerSpecHash(pod, secrets, c.name)]));
  return [...secrets, pod];
}

// ---------------------------------------------------------------------------------------------
// What each container was made from. podman copies a Pod's annotations onto each of its
// containers, so a running container carries the hash of its own definition: `up` compares it
// with the manifest's to know which containers a change concerns (the values the ConfigMap gives
// and the image are compared apart, with what the running container has).

const SPEC_ANNOTATION_PREFIX = "io.github.brics-env/spec.";

export function specAnnotation(container: ContainerName): string {
  return `${SPEC_ANNOTATION_PREFIX}${container}`;
}

/**
 * A hash of everything in the manifest that shapes one container: its own definition (image
 * name, args, literal env values and the ConfigMap keys of the others, ports, mounts,
 * capabilities), the pod volumes it mounts with the data of the Secrets behind them, and the pod's
 * hostname and restart policy.
 */
export function containerSpecHash(pod: Pod, secrets: readonly Secret[], container: ContainerName): string {
  const c = pod.spec.containers.find((x) => x.name === container);
  if (c === undefined) throw new ManifestInputError(`the pod has no container ${container}`);
  const used = new Set(c.volumeMounts.map((m) => m.name));
  const volumes = pod.spec.volumes.filter((v) => used.has(v.name));
  const secretData = volumes.flatMap((v) => secrets.filter((s) => s.metadata.name === v.secret?.secretName).map((s) => [s.metadata.name, s.data]));
  const input = JSON.stringify({ container: c, volumes, secrets: secretData, hostname: pod.spec.hostname, restartPolicy: pod.spec.restartPolicy });
  return createHash("sha256").update(input).digest("hex").slice(0, 32);
}

/** Multi-document YAML, one object per document; the same objects always give the same bytes. */
export function renderManifest(objects: readonly ManifestObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0, minContentWidth: 0 })).join("---\n");
}
