/**
 * The podman CLI. There is no maintained Node client for podman's libpod API (kube play is not in
 * the Docker-compatible API), so everything goes through the command line. Version differences are
 * decided in plan/podmanQuirks.ts and acted on only here.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import type { ManifestObject } from "../plan/manifest.js";
import { adaptManifest, needsAdaptation, parseVersion, quirksFor, type AdaptedManifest, type PodmanVersion, type Quirks } from "../plan/podmanQuirks.js";
import { CommandError, findExecutable, run, runAllowFailure, type RunOptions } from "./exec.js";
import { parseSlurmVersion } from "../plan/slurmCapabilities.js";
import { rememberedVersion, rememberVersion, versionCacheKey } from "./podmanVersionCache.js";

export type { PodmanVersion, Quirks } from "../plan/podmanQuirks.js";

class PodmanNotFoundError extends Error {
  constructor() {
    super(
      "podman not found on PATH. Install podman (Debian/Ubuntu: apt-get install podman; macOS: brew install podman, " +
        "then podman machine init && podman machine start), or set BRICS_ENV_PODMAN to its path.",
    );
    this.name = "PodmanNotFoundError";
  }
}

let binary: string | undefined;

async function podmanBinary(): Promise<string> {
  if (binary !== undefined) return binary;
  const override = process.env["BRICS_ENV_PODMAN"];
  const found = override !== undefined && override !== "" ? override : await findExecutable("podman");
  if (found === undefined) throw new PodmanNotFoundError();
  binary = found;
  return found;
}

export async function podman(args: readonly string[], opts: RunOptions = {}) {
  return run(await podmanBinary(), args, opts);
}

export async function podmanAllowFailure(args: readonly string[], opts: RunOptions = {}) {
  return runAllowFailure(await podmanBinary(), args, opts);
}

/** Whether the command succeeds: podman's `exists` sub-commands answer with the exit code. */
async function exitsZero(args: readonly string[]): Promise<boolean> {
  const r = await podmanAllowFailure(args);
  if (r.exitCode === 0) return true;
  if (r.exitCode === 1) return false;
  throw new CommandError(["podman", ...args], r.exitCode, r.stderr, r.stdout);
}

// --- version, host ----------------------------------------------------------------------------

/** What decides how brics-env plays a manifest: podman's version and whether it is a remote client. */
export interface PodmanVersionInfo {
  readonly version: PodmanVersion;
  readonly quirks: Quirks;
  /** The client talks to a podman service elsewhere (macOS/Windows podman machine). */
  readonly remote: boolean;
}

export interface PodmanInfo extends PodmanVersionInfo {
  readonly ociRuntime: string | undefined;
  readonly rootless: boolean;
}

/** A promise asked for once per process; a failure is not kept, so the next caller sees it itself. */
function once<T>(ask: () => Promise<T>): () => Promise<T> {
  let cached: Promise<T> | undefined;
  return () => {
    if (cached === undefined) {
      const asked = ask();
      cached = asked;
      asked.catch(() => {
        if (cached === asked) cached = undefined;
      });
    }
    return cached;
  };
}

/**
 * From `podman version` alone (tens of milliseconds; `podman info` takes a quarter of a second):
 * a remote client reports the server's version beside its own, a local one its own only. A local
 * podman's answer is remembered for its binary (podmanVersionCache.ts).
 */
export const podmanVersionInfo = once(async (): Promise<PodmanVersionInfo> => {
  const key = versionCacheKey(await podmanBinary());
  const remembered = key === undefined ? undefined : rememberedVersion(key);
  if (remembered !== undefined) {
    try {
      return versionInfo(remembered, false);
    } catch {
      // Not a version (a damaged cache file): ask podman.
    }
  }
  const { stdout } = await podman(["version", "--format", "json"]);
  const parsed = JSON.parse(stdout) as { Client?: { Version?: string }; Server?: { Version?: string } };
  // The server's version decides what kube play does; the client's only matters when there is no server.
  const raw = parsed.Server?.Version ?? parsed.Client?.Version;
  if (raw === undefined) throw new Error(`podman version printed no version: ${stdout.slice(0, 200)}`);
  const remote = parsed.Server !== undefined;
  const info = versionInfo(raw, remote);
  if (!remote && key !== undefined) rememberVersion(key, raw);
  return info;
});

function versionInfo(raw: string, remote: boolean): PodmanVersionInfo {
  const version = parseVersion(raw);
  return { version, quirks: quirksFor(version), remote };
}

/** Everything doctor shows; also how a remote client reaches its machine's storage. */
export const podmanInfo = once(async (): Promise<PodmanInfo> => {
  const [versionInfo, { stdout }] = await Promise.all([podmanVersionInfo(), podman(["info", "--format", "json"])]);
  const info = JSON.parse(stdout) as {
    host?: { serviceIsRemote?: boolean; ociRuntime?: { name?: string }; security?: { rootless?: boolean } };
  };
  return {
    ...versionInfo,
    remote: info.host?.serviceIsRemote === true,
    ociRuntime: info.host?.ociRuntime?.name,
    rootless: info.host?.security?.rootless === true,
  };
});

// --- images -----------------------------------------------------------------------------------

export async function imageExists(ref: string): Promise<boolean> {
  return exitsZero(["image", "exists", ref]);
}

export interface ImageFacts {
  readonly id: string;
  /** The values of the labels asked for that the image has. */
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * Id and the asked labels of each image (those it has), all in one podman call when all images
 * are there (inspectEach); missing images are left out.
 */
export async function imagesFacts(refs: readonly string[], labels: readonly string[]): Promise<Map<string, ImageFacts>> {
  const format = ["{{.Id}}", ...labels.map((l) => `{{index .Labels ${JSON.stringify(l)}}}`)].join("\t");
  const facts = new Map<string, ImageFacts>();
  for (const [ref, line] of await inspectEach("image", format, refs)) {
    const [id = "", ...values] = line.split("\t");
    const found: Record<string, string> = {};
    labels.forEach((l, i) => {
      const v = values[i]?.trim() ?? "";
      if (v !== "" && v !== "<no value>") found[l] = v;
    });
    facts.set(ref, { id: id.trim(), labels: found });
  }
  return facts;
}

/**
 * `podman <kind> inspect --format <format>` of each name, in one podman process when all exist
 * (each process start costs; podman prints nothing for the others when one is missing, so then
 * each is asked on its own). Name -> its output line; missing names are left out.
 */
async function inspectEach(kind: "image" | "container", format: string, names: readonly string[]): Promise<Map<string, string>> {
  const lines = new Map<string, string>();
  const unique = [...new Set(names)];
  if (unique.length === 0) return lines;
  const all = await podmanAllowFailure([kind, "inspect", "--format", format, ...unique]);
  const printed = all.stdout.split("\n").filter((l) => l.trim() !== "");
  if (all.exitCode === 0 && printed.length === unique.length) {
    unique.forEach((name, i) => lines.set(name, printed[i]!));
    return lines;
  }
  await Promise.all(
    unique.map(async (name) => {
      const one = await podmanAllowFailure([kind, "inspect", "--format", format, name]);
      if (one.exitCode === 0) lines.set(name, one.stdout.trim());
    }),
  );
  return lines;
}

/** The image's id, or undefined when there is no such image. */
export async function imageId(ref: string): Promise<string | undefined> {
  const r = await podmanAllowFailure(["image", "inspect", "--format", "{{.Id}}", ref]);
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** What became of an image a build replaced (removeReplacedImage). */
export type ReplacedImage = "removed" | "named" | "in use" | "gone";

/**
 * Removes an image that a build took the name from, when it has no name left and no container
 * uses it; anything else keeps it. Its name must be checked first: podman 4.3's `image rm` of an id
 * also removes an image that still has a name. podman itself refuses an image a container uses.
 */
export async function removeReplacedImage(id: string): Promise<ReplacedImage> {
  const names = await podmanAllowFailure(["image", "inspect", "--format", "{{len .RepoTags}}", id]);
  if (names.exitCode !== 0) return "gone";
  if (names.stdout.trim() !== "0") return "named";
  const r = await podmanAllowFailure(["image", "rm", id]);
  if (r.exitCode === 0) return "removed";
  return /in use|used by/i.test(r.stderr) ? "in use" : "gone";
}

/** A label's value on an image, or undefined when the image or the label is not there. */
export async function imageLabel(ref: string, label: string): Promise<string | undefined> {
  const r = await podmanAllowFailure(["image", "inspect", "--format", `{{index .Labels "${label}"}}`, ref]);
  if (r.exitCode !== 0) return undefined;
  const value = r.stdout.trim();
  return value === "" || value === "<no value>" ? undefined : value;
}

/**
 * The Slurm version of an image (a throw-away container, no network). `slurmd -V` answers without
 * a slurm.conf, which a base image has only once its start script wrote one; the client commands
 * need one.
 */
export async function slurmVersionOfImage(ref: string): Promise<string | undefined> {
  const probe = "slurmd -V 2>/dev/null || sbatch --version 2>/dev/null";
  const r = await podmanAllowFailure(["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", ref, "-c", probe], { timeoutMs: 120_000 });
  return r.exitCode === 0 ? parseSlurmVersion(r.stdout) : undefined;
}

/**
 * Whether podman runs containers as root: a local podman started by root. (A podman machine's
 * mode is the machine's setting, which only `podman info` tells.)
 */
export function localPodmanIsRootful(): boolean {
  return process.platform === "linux" && !process.env["CONTAINER_HOST"] && process.geteuid?.() === 0;
}

/** An image's labels, or undefined when there is no such image. */
export async function imageLabels(ref: string): Promise<Record<string, string> | undefined> {
  const r = await podmanAllowFailure(["image", "inspect", "--format", "{{json .Labels}}", ref]);
  if (r.exitCode !== 0) return undefined;
  return (JSON.parse(r.stdout.trim() || "null") as Record<string, string> | null) ?? {};
}

export interface BuildSpec {
  readonly containerfile: string;
  readonly context: string;
  readonly tag: string;
  readonly target?: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Labels put on the image. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Build secrets: files that `RUN --mount=type=secret,id=<id>` steps read at /run/secrets/<id>.
   * Their content reaches neither podman's command line nor the image.
   */
  readonly secrets?: ReadonlyArray<{ readonly id: string; content(): string }>;
  readonly onLine?: (line: string) => void;
}

export async function buildImage(spec: BuildSpec): Promise<void> {
  const args = ["build", "--layers", "-f", spec.containerfile, "-t", spec.tag];
  if (spec.target !== undefined) args.push("--target", spec.target);
  for (const [k, v] of Object.entries(spec.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`);
  for (const [k, v] of Object.entries(spec.labels ?? {})) args.push("--label", `${k}=${v}`);
  const secrets = spec.secrets ?? [];
  // The secrets' files live for this build only, in a directory only this user can enter.
  const secretDir = secrets.length === 0 ? undefined : await mkdtemp(join(tmpdir(), "brics-env-build-secrets-"));
  try {
    for (const [i, secret] of secrets.entries()) {
      const file = join(secretDir!, String(i));
      // podman reads --secret as comma-separated key=value pairs.
      if (!/^[A-Za-z0-9_.-]+$/.test(secret.id) || file.includes(",")) throw new Error(`build secret ${secret.id} at ${file}: a comma or an odd character in the id or path`);
      await writeFile(file, secret.content(), { mode: 0o600, flag: "wx" });
      args.push("--secret", `id=${secret.id},src=${file}`);
    }
    args.push(spec.context);
    await podman(args, spec.onLine === undefined ? {} : { onLine: (l) => spec.onLine?.(l) });
  } finally {
    if (secretDir !== undefined) await rm(secretDir, { recursive: true, force: true });
  }
}

/**
 * Makes sure an image is available, pulling it if needed. A failed pull names the image and
 * the variable that points brics-env at a mirror or a locally built equivalent; `moreHelp` adds
 * what else the caller knows (e.g. how to build a base offline).
 */
export async function ensureImage(
  ref: string,
  overrideVar: string,
  opts: { timeoutMs?: number; moreHelp?: readonly string[] } = {},
): Promise<"present" | "pulled"> {
  if (await imageExists(ref)) return "present";
  const r = await podmanAllowFailure(["pull", ref], { timeoutMs: opts.timeoutMs ?? 600_000 }).catch((e: unknown) => ({
    exitCode: -1,
    stderr: (e as Error).message,
    stdout: "",
  }));
  if (r.exitCode === 0) return "pulled";
  // podman prints its retries first; the last line says why it gave up.
  const last = r.stderr.trim().split("\n").slice(-1).join("");
  const help = [
    `point ${overrideVar} at a mirror of it (e.g. ${overrideVar}=registry.example.org/${ref.replace(/^[^/]+\//, "")}) ` +
      `or at an equivalent image already present locally (podman images)`,
    ...(opts.moreHelp ?? []),
  ];
  throw new Error(
    `cannot pull image ${ref}; is its registry unreachable from here?\n    ${last}\nWhat to do:\n${help.map((h) => `  - ${h}`).join("\n")}`,
  );
}

// --- volumes ----------------------------------------------------------------------------------

export async function volumeExists(name: string): Promise<boolean> {
  return exitsZero(["volume", "exists", name]);
}

export async function volumeCreate(name: string, labels: Readonly<Record<string, string>> = {}): Promise<void> {
  const args = ["volume", "create"];
  for (const [k, v] of Object.entries(labels)) args.push("--label", `${k}=${v}`);
  await podman([...args, name]);
}

/** Every volume podman has, with where it is on the podman host, in one call. */
export async function volumeMountpoints(): Promise<Map<string, string>> {
  const { stdout } = await podman(["volume", "ls", "--format", "{{.Name}}\t{{.Mountpoint}}"]);
  return new Map(
    stdout
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => {
        const [name = "", mountpoint = ""] = l.split("\t");
        return [name.trim(), mountpoint.trim()] as const;
      }),
  );
}

/**
 * Fills a volume from a tar stream. The remote client cannot import before podman 5.6, so there
 * the archive is piped into `podman volume import` run inside the podman machine VM.
 */
export async function volumeImport(name: string, tar: Readable): Promise<void> {
  const { remote, quirks } = await podmanVersionInfo();
  if (remote && !quirks.remoteVolumeImport) {
    const info = await podmanInfo();
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`volume name ${JSON.stringify(name)} cannot be passed through podman machine ssh`);
    // `podman machine ssh` logs in as the VM's user; a rootful machine keeps its volumes in root's storage.
    const cmd = `${info.rootless ? "" : "sudo "}podman volume import ${name} -`;
    await podman(["machine", "ssh", cmd], { stdin: tar });
    return;
  }
  await podman(["volume", "import", name, "-"], { stdin: tar });
}

export async function volumeRm(name: string, force = false): Promise<boolean> {
  if (!(await volumeExists(name))) return false;
  await podman(["volume", "rm", ...(force ? ["--force"] : []), name]);
  return true;
}

export async function volumeLs(): Promise<string[]> {
  const { stdout } = await podman(["volume", "ls", "--format", "{{.Name}}"]);
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

// --- secrets ----------------------------------------------------------------------------------

export async function secretLs(): Promise<string[]> {
  const { stdout } = await podman(["secret", "ls", "--format", "{{.Name}}"]);
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

// --- pods, containers -------------------------------------------------------------------------

export async function podExists(name: string): Promise<boolean> {
  return exitsZero(["pod", "exists", name]);
}

export interface PodState {
  readonly name: string;
  readonly state: string;
  readonly containers: ReadonlyArray<{ name: string; state: string }>;
  /** What the pod's infra container publishes. */
  readonly ports: ReadonlyArray<{ hostIP: string; hostPort: number; containerPort: number }>;
}

export async function podInspect(name: string): Promise<PodState | undefined> {
  const r = await podmanAllowFailure(["pod", "inspect", name]);
  if (r.exitCode !== 0) return undefined;
  const raw = JSON.parse(r.stdout) as unknown;
  // podman 4 prints an object, podman 5 an array of one.
  return podStateOf((Array.isArray(raw) ? raw[0] : raw) as PodJson, name);
}

interface PodJson {
  Name?: string;
  State?: string;
  Containers?: Array<{ Name?: string; State?: string }>;
  InfraConfig?: { PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null };
}

function podStateOf(obj: PodJson, name: string): PodState {
  const ports = Object.entries(obj.InfraConfig?.PortBindings ?? {}).flatMap(([key, bindings]) =>
    (bindings ?? []).map((b) => ({
      hostIP: b.HostIp === undefined || b.HostIp === "" ? "0.0.0.0" : b.HostIp,
      hostPort: Number(b.HostPort),
      containerPort: Number(key.split("/")[0]),
    })),
  );
  return {
    name: obj.Name ?? name,
    state: obj.State ?? "unknown",
    containers: (obj.Containers ?? []).map((c) => ({ name: c.Name ?? "", state: c.State ?? "unknown" })),
    ports,
  };
}

/** A pod, images and volumes, by name, as `up` decides on them before it plays. */
export interface ObjectsWanted {
  readonly pod: string;
  readonly images: readonly string[];
  /** The image labels to read. */
  readonly imageLabels: readonly string[];
  readonly volumes: readonly string[];
}

export interface ObjectsFound {
  readonly pod: PodState | undefined;
  readonly images: Map<string, ImageFacts>;
  /** The wanted volumes that exist, with their mount points. */
  readonly volumes: Map<string, string>;
}

const NO_SUCH_OBJECT = /no such object: "([^"]*)"/;

/** The names one `podman inspect` is asked, in its order: the pod, then each image and volume once. */
function namesAsked(wanted: ObjectsWanted): string[] {
  return [wanted.pod, ...new Set(wanted.images), ...new Set(wanted.volumes)];
}

/**
 * What `podman inspect` of any type (`podman inspect <pod> <images…> <volumes…>`) printed, read as
 * the wanted objects; undefined where the output cannot be told apart for certain (another error
 * than a missing object, a count that does not match, a name that found another kind of object:
 * a container named like a volume, say), so that the caller asks each kind on its own. podman
 * prints the objects it found in the order asked and names each missing one on stderr.
 */
export function readInspection(wanted: ObjectsWanted, printed: { readonly exitCode: number; readonly stdout: string; readonly stderr: string }): ObjectsFound | undefined {
  const missing = new Set<string>();
  for (const line of printed.stderr.split("\n")) {
    const m = NO_SUCH_OBJECT.exec(line);
    if (m !== null) missing.add(m[1]!);
    else if (/error/i.test(line)) return undefined;
  }
  if ((printed.exitCode === 0) !== (missing.size === 0)) return undefined;
  let objects: unknown;
  try {
    objects = printed.stdout.trim() === "" ? [] : JSON.parse(printed.stdout);
  } catch {
    return undefined;
  }
  const images = new Set(wanted.images);
  const names = namesAsked(wanted);
  const present = names.filter((n) => !missing.has(n));
  if (!Array.isArray(objects) || objects.length !== present.length || [...missing].some((n) => !names.includes(n))) return undefined;
  let pod: PodState | undefined;
  const found = { images: new Map<string, ImageFacts>(), volumes: new Map<string, string>() };
  for (const [i, name] of present.entries()) {
    const o = objects[i] as Record<string, unknown>;
    if (name === wanted.pod) {
      if (typeof o["InfraContainerID"] !== "string" || o["Name"] !== name) return undefined;
      pod = podStateOf(o as PodJson, name);
    } else if (images.has(name)) {
      if (typeof o["Id"] !== "string" || !Array.isArray(o["RepoTags"])) return undefined;
      const labels = (o["Labels"] ?? {}) as Record<string, unknown>;
      const values: Record<string, string> = {};
      for (const l of wanted.imageLabels) if (typeof labels[l] === "string" && labels[l] !== "") values[l] = labels[l] as string;
      found.images.set(name, { id: o["Id"], labels: values });
    } else {
      if (typeof o["Mountpoint"] !== "string" || o["Name"] !== name) return undefined;
      found.volumes.set(name, o["Mountpoint"]);
    }
  }
  return { pod, ...found };
}

/**
 * The wanted pod, images and volumes from one podman process (each start costs 35–40 ms of a
 * core, and `up` waits for these before it plays); from `pod inspect`, `image inspect` and
 * `volume ls` side by side where that one's output cannot be read for certain.
 */
export async function inspectObjects(wanted: ObjectsWanted): Promise<ObjectsFound> {
  const together = readInspection(wanted, await podmanAllowFailure(["inspect", ...namesAsked(wanted)]));
  if (together !== undefined) return together;
  const [pod, images, all] = await Promise.all([podInspect(wanted.pod), imagesFacts(wanted.images, wanted.imageLabels), volumeMountpoints()]);
  return { pod, images, volumes: new Map([...all].filter(([name]) => wanted.volumes.includes(name))) };
}

export async function podRm(name: string): Promise<boolean> {
  if (!(await podExists(name))) return false;
  await podman(["pod", "rm", "--force", name]);
  return true;
}

export interface ContainerRow {
  readonly name: string;
  readonly state: string;
  readonly status: string;
  readonly image: string;
  readonly pod: string;
}

export async function ps(podName?: string): Promise<ContainerRow[]> {
  const args = ["ps", "--all", "--format", "json"];
  if (podName !== undefined) args.push("--filter", `pod=${podName}`);
  const { stdout } = await podman(args);
  const rows = JSON.parse(stdout === "" ? "[]" : stdout) as Array<{
    Names?: string[];
    State?: string;
    Status?: string;
    Image?: string;
    PodName?: string;
    IsInfra?: boolean;
  }>;
  return rows
    .filter((r) => r.IsInfra !== true)
    .map((r) => ({
      name: r.Names?.[0] ?? "",
      state: r.State ?? "",
      status: r.Status ?? "",
      image: r.Image ?? "",
      pod: r.PodName ?? "",
    }));
}

export interface ContainerHealth {
  readonly name: string;
  readonly status: string;
  readonly restarts: number;
}

/** State and restart count of each named container (absent ones are left out). */
export async function containerHealth(names: readonly string[]): Promise<ContainerHealth[]> {
  const lines = await inspectEach("container", "{{.State.Status}}|{{.RestartCount}}", names);
  return names.flatMap((name) => {
    const line = lines.get(name);
    if (line === undefined) return [];
    const [status, restarts] = line.trim().split("|");
    return [{ name, status: status || "unknown", restarts: Number(restarts ?? 0) || 0 }];
  });
}

/** Runs a command in a running container; the result whatever the exit code. `input` goes to its stdin. */
export async function execInContainer(name: string, command: readonly string[], timeoutMs = 30_000, input?: string | Buffer) {
  return podmanAllowFailure(["exec", ...(input !== undefined ? ["--interactive"] : []), name, ...command], {
    timeoutMs,
    ...(input !== undefined ? { input } : {}),
  });
}

export interface OneOffOptions {
  /** Named volumes to mount: name -> path in the container. */
  readonly volumes?: Readonly<Record<string, string>>;
  readonly entrypoint?: string;
  readonly workdir?: string;
  readonly input?: string | Buffer;
  readonly timeoutMs?: number;
}

/** A throw-away container of `image` without a network; the result whatever the exit code. */
export async function runOneOff(image: string, command: readonly string[], opts: OneOffOptions = {}) {
  const args = ["run", "--rm", "--network", "none"];
  if (opts.input !== undefined) args.push("--interactive");
  if (opts.entrypoint !== undefined) args.push("--entrypoint", opts.entrypoint);
  if (opts.workdir !== undefined) args.push("--workdir", opts.workdir);
  for (const [volume, path] of Object.entries(opts.volumes ?? {})) args.push("--volume", `${volume}:${path}`);
  args.push(image, ...command);
  return podmanAllowFailure(args, { timeoutMs: opts.timeoutMs ?? 300_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
}

/** Stops a container (SIGTERM, then SIGKILL after `timeoutS`); one stopped by hand stays stopped whatever its restart policy. */
export async function containerStop(name: string, timeoutS: number): Promise<void> {
  await podman(["stop", "--time", String(timeoutS), name], { timeoutMs: (timeoutS + 60) * 1000 });
}

export async function containerStart(name: string): Promise<void> {
  await podman(["start", name]);
}

export interface ContainerFacts {
  readonly name: string;
  readonly state: string;
  readonly imageId: string;
  /** `NAME=value` entries of its environment (the image's and its own). */
  readonly env: readonly string[];
  readonly annotations: Readonly<Record<string, string>>;
}

/** What `up` compares of each existing container (asked side by side); absent names are left out. */
export async function containerFacts(names: readonly string[]): Promise<ContainerFacts[]> {
  const answers = await Promise.all(names.map((name) => podmanAllowFailure(["container", "inspect", name])));
  return answers.flatMap((r) => {
    // An absent container is an error of its own, never taken for the others'.
    if (r.exitCode !== 0) return [];
    const rows = JSON.parse(r.stdout.trim() || "[]") as Array<{
      Name?: string;
      Image?: string;
      State?: { Status?: string };
      Config?: { Env?: string[] | null; Annotations?: Record<string, string> | null };
    }>;
    return rows.map((c) => ({
      name: c.Name ?? "",
      state: c.State?.Status ?? "unknown",
      imageId: c.Image ?? "",
      env: c.Config?.Env ?? [],
      annotations: c.Config?.Annotations ?? {},
    }));
  });
}

/** Stops (SIGTERM, then SIGKILL after `stopTimeoutS`) and removes a container, if it exists. */
export async function containerRemove(name: string, stopTimeoutS: number): Promise<void> {
  await podman(["rm", "--force", "--ignore", "--time", String(stopTimeoutS), name], { timeoutMs: (stopTimeoutS + 60) * 1000 });
}

/**
 * `podman create` with `args`, then `podman start`. `env` is the environment podman itself runs
 * with, for `--env NAME` arguments (values taken from podman's own environment, never from its
 * command line).
 */
export async function containerCreateAndStart(args: readonly string[], env: Readonly<Record<string, string>>): Promise<void> {
  const { stdout } = await podman(args, { env: { ...env } });
  const id = stdout.trim().split("\n").pop() ?? "";
  if (!/^[0-9a-f]{12,64}$/.test(id)) throw new Error(`podman create printed no container id: ${stdout.slice(0, 200)}`);
  await podman(["start", id]);
}

export async function containerRestart(name: string, stopTimeoutS: number): Promise<void> {
  await podman(["restart", "--time", String(stopTimeoutS), name], { timeoutMs: (stopTimeoutS + 60) * 1000 });
}

export async function containerLogs(name: string, tail?: number): Promise<string> {
  const args = ["logs"];
  if (tail !== undefined) args.push("--tail", String(tail));
  // podman logs writes the container's stderr to its stderr: keep both, in arrival order as far as possible.
  const r = await podman([...args, name]);
  return `${r.stdout}${r.stderr}`;
}

/** Streams logs to our stdout/stderr (for `brics-env logs`). */
export async function containerLogsStream(name: string, tail: number | undefined, follow: boolean): Promise<void> {
  const args = ["logs"];
  if (tail !== undefined) args.push("--tail", String(tail));
  if (follow) args.push("--follow");
  await podman([...args, name], {
    onLine: (line, stream) => (stream === "stdout" ? process.stdout : process.stderr).write(`${line}\n`),
  });
}

// --- kube play / down -------------------------------------------------------------------------

export interface PlayOptions {
  /** Directory (on the podman host) where a version-adapted copy of the manifest and its Secret files go. */
  readonly workDir: string;
  readonly configmaps?: readonly string[];
  readonly onLine?: (line: string) => void;
  /** The objects the manifest file holds, when the caller has them (it is then not read again). */
  readonly objects?: readonly ManifestObject[];
  /**
   * What podman holds, when the caller asked already and nothing has changed since:
   * volumeMountpoints() and secretLs() (the Secrets matter only to a play that creates Secrets,
   * so they may be left out). Asked here otherwise.
   */
  readonly known?: { readonly volumes: ReadonlyMap<string, string>; readonly secrets?: readonly string[] };
}

export interface PlayResult {
  /** The file actually played: combined.yaml, or its adapted copy on old podman. */
  readonly playedFile: string;
  readonly notes: string[];
}

/** The objects of a manifest file that brics-env wrote (combined.yaml: Secrets and a Pod). */
async function readManifestObjects(file: string): Promise<ManifestObject[]> {
  const { parseAllDocuments } = await import("yaml");
  return parseAllDocuments(await readFile(file, "utf8")).map((d) => d.toJS() as ManifestObject);
}

/**
 * `podman kube play`, with the manifest adapted to this podman's bugs (see plan/podmanQuirks.ts).
 * Stale Secrets from an earlier play are removed first: their content comes from the deploy
 * directory and is recreated by the play, so nothing is lost.
 */
export async function kubePlay(manifestFile: string, opts: PlayOptions): Promise<PlayResult> {
  const [info, objects, volumes] = await Promise.all([
    podmanVersionInfo(),
    opts.objects ?? readManifestObjects(manifestFile),
    opts.known?.volumes ?? volumeMountpoints(),
  ]);
  const notes: string[] = [];
  const adapted = needsAdaptation(info.quirks) ? await adaptToHostPaths(objects, { quirks: info.quirks, workDir: opts.workDir, volumes, remote: info.remote }) : undefined;
  // Only Secrets this play creates can collide with an earlier play's (an adapted play mounts
  // files instead, and leaves whatever a newer podman made alone).
  const played = adapted?.objects ?? objects;
  const secretNames = played.filter((o) => o.kind === "Secret").map((o) => o.metadata.name);
  if (secretNames.length > 0) {
    await removeSecrets(secretNames, { secrets: opts.known?.secrets ?? (await secretLs()), volumes: [...volumes.keys()] });
  }

  let playedFile = manifestFile;
  if (adapted !== undefined) {
    playedFile = join(opts.workDir, "play.yaml");
    const { renderManifest } = await import("../plan/manifest.js");
    await writeFile(playedFile, renderManifest(adapted.objects), { mode: 0o600 });
    notes.push(
      `podman ${info.version.raw}: playing ${playedFile}, a copy of ${manifestFile} adapted to this podman ` +
        `(Secrets mounted from ${secretDirOf(opts.workDir)}, subPath mounts as hostPath)`,
    );
  }
  const args = ["kube", "play"];
  for (const c of opts.configmaps ?? []) args.push("--configmap", c);
  args.push(playedFile);
  await podman(args, opts.onLine === undefined ? {} : { onLine: (l) => opts.onLine?.(l) });
  return { playedFile, notes };
}

const secretDirOf = (workDir: string) => join(workDir, "secrets");

export interface HostPathContext {
  readonly quirks: Quirks;
  readonly workDir: string;
  /** volumeMountpoints() */
  readonly volumes: ReadonlyMap<string, string>;
  readonly remote: boolean;
}

/** The manifest's objects adapted as `quirks` require (plan/podmanQuirks.ts); nothing is written. */
export function planHostPaths(objects: readonly ManifestObject[], ctx: HostPathContext): AdaptedManifest {
  return adaptManifest(objects, {
    quirks: ctx.quirks,
    secretDir: secretDirOf(ctx.workDir),
    volumeMountpoint: (n) => ctx.volumes.get(n),
    // Remotely the path cannot be checked; volumes made by `resources` hold every mounted path.
    pathExists: (p) => ctx.remote || existsSync(p),
  });
}

/**
 * The manifest's objects adapted as `quirks` require, with the Secret files the adapted Pod mounts
 * written into `<workDir>/secrets` (replacing what an earlier play left there: running containers
 * keep the files they mounted).
 */
export async function adaptToHostPaths(objects: readonly ManifestObject[], ctx: HostPathContext): Promise<AdaptedManifest> {
  const secretDir = secretDirOf(ctx.workDir);
  await rm(secretDir, { recursive: true, force: true });
  const adapted = planHostPaths(objects, ctx);
  await mkdir(ctx.workDir, { recursive: true, mode: 0o700 });
  for (const f of adapted.files) {
    await mkdir(dirname(f.path), { recursive: true, mode: 0o700 });
    await writeFile(f.path, f.content, { mode: f.mode });
    await chmod(f.path, f.mode);
  }
  // Directories holding Secret files must be traversable by the container users that read them.
  for (const f of adapted.files) await chmod(dirname(f.path), 0o755);
  await chmod(secretDir, 0o711).catch(() => undefined);
  return adapted;
}

/** Removes the named Secrets and their same-named volumes; `existing`: what podman has, when known. */
async function removeSecrets(names: readonly string[], existing?: { secrets: readonly string[]; volumes: readonly string[] }): Promise<string[]> {
  if (names.length === 0) return [];
  const [secrets, volumes] = existing !== undefined ? [existing.secrets, existing.volumes] : await Promise.all([secretLs(), volumeLs()]);
  const removed = names.filter((n) => secrets.includes(n));
  if (removed.length > 0) await podman(["secret", "rm", ...removed]);
  // kube play backs each Secret with a volume of the same name; a stale one would keep old keys.
  const stale = names.filter((n) => volumes.includes(n));
  if (stale.length > 0) await podman(["volume", "rm", "--force", ...stale]);
  return removed;
}

export interface DownOptions {
  /** Also remove the named volumes and Secrets (state is lost). */
  readonly force: boolean;
  readonly podName: string;
  readonly volumes: readonly string[];
  readonly secrets: readonly string[];
  /** Work directory given to kubePlay, removed on down. */
  readonly workDir?: string;
}

export interface DownResult {
  readonly podRemoved: boolean;
  readonly removedVolumes: string[];
  readonly removedSecrets: string[];
  readonly keptVolumes: string[];
  /** How long podman itself took to remove the pod (its containers are stopped first), in ms. */
  readonly podRemoveMs: number;
}

/**
 * Tears the pod down without relying on `kube down` flags that vary by version: the pod is
 * removed by name (the manifest need not exist any more); Secrets and volumes by name, only
 * with force (on podman >= 4.5 kube down would drop Secrets anyway; here behaviour is the same everywhere).
 */
export async function kubeDown(opts: DownOptions): Promise<DownResult> {
  const podRemoved = await podExists(opts.podName);
  const started = Date.now();
  if (podRemoved) await podman(["pod", "rm", "--force", opts.podName]);
  const podRemoveMs = Date.now() - started;
  const removedSecrets = opts.force ? await removeSecrets(opts.secrets) : [];
  // Listed after the Secrets went: their same-named volumes are gone with them.
  const existing = new Set(await volumeLs());
  const present = opts.volumes.filter((v) => existing.has(v));
  const removedVolumes = opts.force ? present : [];
  if (removedVolumes.length > 0) await podman(["volume", "rm", "--force", ...removedVolumes]);
  if (opts.workDir !== undefined) await rm(secretDirOf(opts.workDir), { recursive: true, force: true });
  return { podRemoved, removedVolumes, removedSecrets, keptVolumes: opts.force ? [] : present, podRemoveMs };
}

