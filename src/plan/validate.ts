/**
 * Validation of a deploy directory's contents, as plain data read by the caller. Returns every
 * problem at once, each naming the file, the key, what is wrong and what is expected.
 */
import { isIP } from "node:net";
import { posix } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, visit, type Document, type Node, type Pair } from "yaml";
import {
  checkValue,
  IN_POD_SLURM_VALUES,
  isDeployConfigKey,
  KEY_SPECS,
  keySpec,
  LOCALHOST_NAMES,
  type DeployConfigKey,
} from "./deployConfig.js";
import { deployFilesFor, FOLLOW_OUTSIDE_LINKS_VARIABLE, type DeployFile } from "./deployFiles.js";
import type { Environment } from "./environments.js";
import { closest, isNearMiss } from "./similar.js";
import { checkZenithClientConfig } from "./zenithClientConfig.js";
import { DEPLOY_CONFIGMAP_FILE, DEPLOY_CONFIGMAP_NAME, MAX_OBJECT_BYTES } from "./names.js";
import {
  bracketedPortsFor,
  parseKnownHosts,
  parsePrivateKey,
  parsePublicKey,
  patternsMatch,
  sameKey,
  type PublicKey,
} from "./sshFormats.js";

export interface Problem {
  readonly severity: "error" | "warning";
  /** Path of the file, as `<dir>/<name>`. */
  readonly file: string;
  readonly key?: string;
  /** 1-based line in the file, where known. */
  readonly line?: number;
  readonly message: string;
  readonly expected?: string;
}

/** Why a file of the deploy directory was not read (its text is then undefined, as if missing). */
export type Unreadable =
  | { readonly kind: "link-outside"; readonly target: string }
  | { readonly kind: "dangling-link" }
  | { readonly kind: "not-regular"; readonly what: string }
  | { readonly kind: "too-large"; readonly size: number }
  | { readonly kind: "not-utf8"; readonly line: number };

export interface DeployDirInput {
  readonly dir: string;
  /** Text of deploy-configmap.yaml, undefined when the file is missing or unreadable. */
  readonly configMapText: string | undefined;
  /** Other files of the deploy directory: name -> text, undefined when missing or unreadable. */
  readonly files: Readonly<Record<string, string | undefined>>;
  /** Files (the ConfigMap included) that are there but were not read, and why. */
  readonly unreadable?: Readonly<Record<string, Unreadable>>;
  /** Permission bits of the files that were read. */
  readonly modes?: Readonly<Record<string, number>>;
  /** Private key file name -> its public key as printed by `ssh-keygen -y -f <file>`. */
  readonly derivedPublicKeys?: Readonly<Record<string, string>>;
}

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === "error");
}

/** One line per problem: `error: <file>:<line>: <key>: <message> (expected: …)`. */
export function formatProblem(p: Problem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}` : p.file;
  const key = p.key !== undefined ? ` ${p.key}:` : "";
  const expected = p.expected !== undefined ? ` (expected: ${p.expected})` : "";
  return `${p.severity}: ${where}:${key} ${p.message}${expected}`;
}

export interface DeployDirReport {
  readonly problems: Problem[];
  /** The ConfigMap's values that the environment uses and that passed their checks. */
  readonly config: ConfigValues;
}

export function validateDeployDir(env: Environment, input: DeployDirInput): DeployDirReport {
  const problems: Problem[] = [];
  const configMapUnreadable = input.unreadable?.[DEPLOY_CONFIGMAP_FILE];
  const config =
    configMapUnreadable === undefined
      ? validateConfigMap(env, input.dir, input.configMapText, problems)
      : void problems.push(unreadableProblem(posix.join(input.dir, DEPLOY_CONFIGMAP_FILE), "ConfigMap", configMapUnreadable));
  for (const file of deployFilesFor(env)) {
    if (file.kind === "configmap" || file.kind === "manifest") continue;
    validateFile(file, input, config, problems);
  }
  return { problems, config: config ?? {} };
}

function describeSize(bytes: number): string {
  return `${(bytes / MAX_OBJECT_BYTES).toFixed(1)} MiB (${bytes} bytes)`;
}

/** The error for a file that is there but was not read; `object`: what Kubernetes makes of it. */
function unreadableProblem(file: string, object: "ConfigMap" | "Secret", why: Unreadable): Problem {
  const error = (message: string, extra: Partial<Problem> = {}): Problem => ({ severity: "error", file, message, ...extra });
  switch (why.kind) {
    case "link-outside":
      return error(`is a symbolic link to ${why.target}, outside the deploy directory`, {
        expected: `the file itself in the deploy directory, or ${FOLLOW_OUTSIDE_LINKS_VARIABLE}=1 to follow such links`,
      });
    case "dangling-link":
      return error("is a symbolic link to a file that does not exist", { expected: "a regular file" });
    case "not-regular":
      return error(`is ${why.what}, not a regular file; it is not read`, { expected: "a regular file" });
    case "too-large":
      return error(`is ${describeSize(why.size)}, more than Kubernetes accepts in a ${object}`, {
        expected: `at most ${describeSize(MAX_OBJECT_BYTES)}`,
      });
    case "not-utf8":
      return error("is not valid UTF-8 text", { line: why.line, expected: "UTF-8 text" });
  }
}

// ---------------------------------------------------------------------------------------------
// The deploy ConfigMap

/** Parsed deploy-config values (strings only), for checks that span several keys or files. */
export type ConfigValues = Partial<Record<DeployConfigKey, string>>;

const CONFIGMAP_TOP_LEVEL = new Set(["apiVersion", "kind", "metadata", "data", "immutable"]);

function validateConfigMap(
  env: Environment,
  dir: string,
  text: string | undefined,
  problems: Problem[],
): ConfigValues | undefined {
  const file = posix.join(dir, DEPLOY_CONFIGMAP_FILE);
  const err = (message: string, extra: Partial<Problem> = {}) =>
    problems.push({ severity: "error", file, message, ...extra });
  const warn = (message: string, extra: Partial<Problem> = {}) =>
    problems.push({ severity: "warning", file, message, ...extra });

  if (text === undefined) {
    err("the deploy ConfigMap is missing", { expected: `create it with \`brics-env init ${env.name}\`` });
    return undefined;
  }
  const lc = new LineCounter();
  const lineOf = (node: { range?: [number, number, number] | null } | null | undefined) =>
    node?.range ? lc.linePos(node.range[0]).line : undefined;
  const docsOrEmpty = parseAllDocuments(text, { version: "1.1", lineCounter: lc, uniqueKeys: true });
  const docs: Document.Parsed[] = Array.isArray(docsOrEmpty) ? docsOrEmpty : [];
  let yamlBroken = false;
  for (const d of docs) {
    for (const e of d.errors) {
      yamlBroken = true;
      err(`is not valid YAML: ${e.message.split("\n")[0]}`, e.linePos ? { line: e.linePos[0].line } : {});
    }
  }
  if (yamlBroken) return undefined;
  const nonEmpty = docs.filter((d) => d.contents !== null);
  if (nonEmpty.length !== 1) {
    err(`holds ${nonEmpty.length} YAML documents`, {
      expected: "exactly one document: the ConfigMap (podman < 4.6 reads only the first)",
    });
    if (nonEmpty.length === 0) return undefined;
  }
  const doc = nonEmpty[0]!;
  // podman and Kubernetes resolve aliases and merge keys themselves; a value assembled from
  // elsewhere in the file is not what it looks like where it is used, so each must be written out.
  let references = false;
  visit(doc, {
    Alias(_, node) {
      references = true;
      err(`uses the YAML alias *${node.source}`, { line: lineOf(node), expected: "the value written out in full" });
    },
    Pair(_, pair) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (typeof key === "symbol" || key === "<<") {
        references = true;
        err("uses a YAML merge key (<<)", { line: lineOf(pair.key as Node), expected: "each key written out in full" });
      }
    },
  });
  if (references) return undefined;
  const root = doc.contents;
  if (!isMap(root)) {
    err("is not a YAML mapping", { expected: "a Kubernetes ConfigMap object", line: lineOf(root) });
    return undefined;
  }

  const top = (name: string) => root.items.find((p) => isScalar(p.key) && p.key.value === name);
  const scalarAt = (name: string): { value: unknown; line: number | undefined } | undefined => {
    const pair = top(name);
    if (pair === undefined) return undefined;
    const v = pair.value as Node | null;
    return { value: isScalar(v) ? v.value : v === null ? null : v.toJSON(), line: lineOf(pair.key as Node) };
  };

  const apiVersion = scalarAt("apiVersion");
  if (apiVersion?.value === "core/v1") {
    // Upstream's examples say core/v1: podman plays it, so it deploys; only a cluster would refuse it.
    warn('apiVersion is "core/v1", which podman accepts but Kubernetes rejects', {
      key: "apiVersion",
      line: apiVersion.line,
      expected: "apiVersion: v1",
    });
  } else if (apiVersion?.value !== "v1") {
    err(`apiVersion is ${apiVersion === undefined ? "missing" : JSON.stringify(apiVersion.value)}`, {
      key: "apiVersion",
      line: apiVersion?.line,
      expected: "apiVersion: v1 (podman also plays core/v1, but Kubernetes rejects it)",
    });
  }
  const kind = scalarAt("kind");
  if (kind?.value !== "ConfigMap") {
    err(`kind is ${kind === undefined ? "missing" : JSON.stringify(kind.value)}`, {
      key: "kind",
      line: kind?.line,
      expected: "kind: ConfigMap",
    });
  }
  const metadata = top("metadata");
  const metaNode = metadata?.value as Node | undefined;
  const nameValue = isMap(metaNode) ? metaNode.get("name") : undefined;
  if (nameValue !== DEPLOY_CONFIGMAP_NAME) {
    err(`metadata.name is ${nameValue === undefined ? "missing" : JSON.stringify(nameValue)}`, {
      key: "metadata.name",
      line: lineOf(metadata?.key as Node | undefined),
      expected: `metadata.name: ${DEPLOY_CONFIGMAP_NAME} (the Pod's configMapKeyRef entries name it)`,
    });
  }
  for (const pair of root.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (name === "binaryData") {
      err("binaryData is not supported", { key: name, line: lineOf(pair.key as Node), expected: "all keys under data" });
    } else if (name === "immutable") {
      const v = isScalar(pair.value) ? pair.value.value : undefined;
      if (typeof v !== "boolean") {
        err("immutable must be a boolean", { key: name, line: lineOf(pair.key as Node), expected: "true or false" });
      }
    } else if (!CONFIGMAP_TOP_LEVEL.has(name)) {
      warn(`unknown top-level field ${JSON.stringify(name)} is ignored`, { key: name, line: lineOf(pair.key as Node) });
    }
  }

  const dataPair = top("data");
  const data = dataPair?.value as Node | null | undefined;
  if (dataPair === undefined || data === null || data === undefined) {
    err("has no data", { key: "data", expected: "a data: mapping holding the deploy-config keys" });
    return undefined;
  }
  if (!isMap(data)) {
    err("data is not a mapping", { key: "data", line: lineOf(dataPair.key as Node), expected: "key: \"value\" pairs under data:" });
    return undefined;
  }

  const values: ConfigValues = {};
  const present = new Map<string, Pair>();
  for (const pair of data.items) {
    const keyName = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    present.set(keyName, pair as Pair);
  }

  for (const [keyName, pair] of present) {
    const line = lineOf(pair.key as Node);
    if (!isDeployConfigKey(keyName)) {
      const nearest = closest(keyName, KEY_SPECS.map((k) => k.key));
      const suggestion = nearest !== undefined ? { expected: `did you mean ${nearest.name}?` } : {};
      if (nearest !== undefined && isNearMiss(nearest)) {
        // A misspelt key would be ignored and its default used in silence: a typo, not an extension.
        err(`unknown key ${JSON.stringify(keyName)}`, { key: keyName, line, ...suggestion });
      } else {
        warn(`unknown key ${JSON.stringify(keyName)} is ignored`, { key: keyName, line, ...suggestion });
      }
      continue;
    }
    const spec = keySpec(keyName);
    const usage = spec.usage(env);
    if (usage === "unused") {
      warn(`is not used by ${env.name} and is ignored`, { key: keyName, line, expected: "remove it" });
      continue;
    }
    const node = pair.value as Node | null;
    const raw = node === null ? null : isScalar(node) ? node.value : isSeq(node) || isMap(node) ? node.toJSON() : node;
    const issues = checkValue(keyName, raw);
    if (usage === "ignored") {
      warn(`is ignored by ${env.name} (${env.auth} authentication)`, { key: keyName, line });
      // The value reaches no container, so a bad one is worth mentioning but not fatal.
      for (const i of issues) {
        warn(i.message, { key: keyName, line, expected: spec.expected });
      }
      continue;
    }
    for (const i of issues) {
      problems.push({ severity: i.severity, file, key: keyName, line, message: i.message, expected: spec.expected });
    }
    if (issues.every((i) => i.severity !== "error")) values[keyName] = raw as string;
  }

  for (const spec of KEY_SPECS) {
    if (spec.usage(env) === "required" && !present.has(spec.key)) {
      err(`required key ${spec.key} is missing`, {
        key: spec.key,
        expected: `${spec.expected}, e.g. ${spec.key}: ${JSON.stringify(spec.example)}`,
      });
    }
  }

  crossCheckConfig(env, values, (key, severity, message, expected) => {
    const pair = present.get(key);
    problems.push({ severity, file, key, line: lineOf(pair?.key as Node | undefined), message, ...(expected ? { expected } : {}) });
  });
  return values;
}

type Report = (key: DeployConfigKey, severity: Problem["severity"], message: string, expected?: string) => void;

function urlHost(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

const HUB_API_EXPECTED = "the IP address of this host as the compute nodes see it, e.g. http://10.0.0.5:8081";

/**
 * External Slurm: the Hub API is published on hubConnectUrl's address only, so it must be an
 * address of this host that compute nodes reach. `addresses`: what its host resolves to here
 * (check looks a name up); `local`: this host's addresses. A name that does not resolve is a
 * warning here (upstream's examples use one) and an error for `manifest`, which must publish
 * somewhere. (A loopback IP address is reported by the ConfigMap's own checks.)
 */
export function hubApiAddressProblems(
  file: string,
  hubConnectUrl: string,
  lookup: { readonly addresses: readonly string[]; readonly local: readonly string[] },
): Problem[] {
  const host = urlHost(hubConnectUrl);
  const named = isIP(host) === 0;
  const warn = (message: string, expected: string): Problem[] => [{ severity: "warning", file, key: "hubConnectUrl", message, expected }];
  const [address] = named ? lookup.addresses : [host];
  if (address === undefined) {
    return warn(
      `names ${host}, which does not resolve to an address here; brics-env publishes the Hub API only on the address in ` +
        "hubConnectUrl, so `manifest` will refuse it",
      `${HUB_API_EXPECTED} (or add ${host} to /etc/hosts)`,
    );
  }
  const shown = named ? `${host} (${address})` : host;
  if (named && isLoopback(address)) {
    return warn(`${shown} is a loopback address, which user servers on the Slurm compute nodes cannot reach unless they run on this host`, HUB_API_EXPECTED);
  }
  if (!isLoopback(address) && !lookup.local.includes(address) && !["0.0.0.0", "::"].includes(address)) {
    return warn(
      `${shown} is not an address of this host, so podman cannot publish the Hub API there`,
      `${HUB_API_EXPECTED}, or --publish <ip>:8081:8081 with an address of this host`,
    );
  }
  return [];
}

/** Checks that only make sense across keys, on values that passed their own checks. */
function crossCheckConfig(env: Environment, values: ConfigValues, report: Report): void {
  if (env.slurm === "pod") {
    const ssh = values.sshHostname;
    if (ssh !== undefined && !(LOCALHOST_NAMES as readonly string[]).includes(ssh.toLowerCase())) {
      report(
        "sshHostname",
        "error",
        `is ${JSON.stringify(ssh)}, but Slurm runs in the pod and its host key is trusted only as ${LOCALHOST_NAMES.join(", ")}`,
        'sshHostname: "localhost"',
      );
    }
    for (const key of ["slurmSpawnerWrappersBin", "condaPrefixDir", "jupyterDataDir"] as const) {
      const fixed = IN_POD_SLURM_VALUES[key];
      if (values[key] !== undefined && values[key] !== fixed) {
        report(key, "warning", `differs from where the Slurm container in the pod provides it`, `${key}: "${fixed}"`);
      }
    }
    const hub = values.hubConnectUrl;
    if (hub !== undefined && !isLoopback(urlHost(hub))) {
      report(
        "hubConnectUrl",
        "warning",
        "does not point at the pod itself, but user servers run in the pod's Slurm container",
        `hubConnectUrl: "${IN_POD_SLURM_VALUES.hubConnectUrl}"`,
      );
    }
  } else {
    const hub = values.hubConnectUrl;
    if (hub !== undefined && isLoopback(urlHost(hub))) {
      report(
        "hubConnectUrl",
        "warning",
        "is a loopback address, which user servers on the Slurm compute nodes cannot reach unless they run on this host",
        "the address of this host as the compute nodes see it, e.g. http://10.0.0.5:8081",
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Key files, known hosts, Zenith client configuration

function validateFile(
  file: DeployFile,
  input: DeployDirInput,
  config: ConfigValues | undefined,
  problems: Problem[],
): void {
  const path = posix.join(input.dir, file.name);
  const text = input.files[file.name];
  const push = (severity: Problem["severity"], message: string, extra: Partial<Problem> = {}) =>
    problems.push({ severity, file: path, message, ...extra });

  const unreadable = input.unreadable?.[file.name];
  if (unreadable !== undefined) {
    problems.push(unreadableProblem(path, "Secret", unreadable));
    return;
  }
  const mode = input.modes?.[file.name];
  if (text !== undefined && mode !== undefined && file.source === "user" && file.secret && (mode & 0o077) !== 0) {
    const how = (mode & 0o044) !== 0 ? "can be read" : "can be changed";
    push("warning", `${how} by ${accessors(mode)} (mode ${mode.toString(8).padStart(4, "0")}), but it holds a secret`, {
      expected: `chmod 600 ${shellWord(path)}`,
    });
  }

  if (text === undefined) {
    if (file.source === "user") {
      push("error", `is missing: ${file.purpose}`, file.howToMake ? { expected: `make it with: ${file.howToMake}` } : {});
    } else if (file.pairedWith !== undefined && input.files[file.pairedWith] !== undefined) {
      push("error", `is missing, but ${file.pairedWith} exists; a key pair is generated only when both halves are missing`, {
        expected: `restore ${file.name}, or remove ${file.pairedWith} to have a new pair generated`,
      });
    }
    return;
  }

  switch (file.kind) {
    case "ssh-private-key":
      checkPrivateKey(file, text, input, push);
      return;
    case "ssh-public-key": {
      const pub = parsePublicKey(text);
      if (!pub.ok) push("error", `is not an SSH public key: ${pub.reason}`, { expected: "one line: <key type> <base64 key> [comment]" });
      return;
    }
    case "ssh-known-hosts":
      checkKnownHosts(text, config, push);
      return;
    case "zenith-client-config":
      checkZenithConfig(text, push);
      return;
    default:
      return;
  }
}

type Push = (severity: Problem["severity"], message: string, extra?: Partial<Problem>) => void;

function accessors(mode: number): string {
  const who = [(mode & 0o070) !== 0 ? "its group" : "", (mode & 0o007) !== 0 ? "all other users" : ""].filter((w) => w !== "");
  return who.join(" and ");
}

/** A path as one shell word, quoted only when it needs it, so the printed command can be pasted. */
function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

function checkPrivateKey(file: DeployFile, text: string, input: DeployDirInput, push: Push): void {
  const key = parsePrivateKey(text);
  if (!key.ok) {
    push("error", `is not an SSH private key: ${key.reason}`, { expected: "an OpenSSH private key, e.g. from ssh-keygen -t ed25519" });
    return;
  }
  if (key.value.encrypted) {
    push("error", "is protected by a passphrase, which nothing in the pod can enter", {
      expected: `a passwordless key: ssh-keygen -p -N "" -f ${file.name}`,
    });
  }
  if (file.pairedWith === undefined) return;
  const pubText = input.files[file.pairedWith];
  if (pubText === undefined) return;
  const pub = parsePublicKey(pubText);
  if (!pub.ok) return; // reported against the .pub file itself
  let derived: { type: string; blob: string } | undefined = key.value.publicKey;
  const fromKeygen = input.derivedPublicKeys?.[file.name];
  if (derived === undefined && fromKeygen !== undefined) {
    const parsed = parsePublicKey(fromKeygen);
    if (parsed.ok) derived = parsed.value;
  }
  if (derived !== undefined && !sameKey(derived, pub.value as PublicKey)) {
    push("error", `does not match ${file.pairedWith}: they are halves of different key pairs`, {
      expected: `regenerate the public half: ssh-keygen -y -f ${file.name} > ${file.pairedWith}`,
    });
  }
}

function checkKnownHosts(text: string, config: ConfigValues | undefined, push: Push): void {
  const parsed = parseKnownHosts(text);
  for (const p of parsed.problems) {
    push("error", `line ${p.line} is not a known_hosts entry: ${p.reason}`, {
      line: p.line,
      expected: "<host patterns> <key type> <base64 key> [comment]",
    });
  }
  const host = config?.sshHostname;
  if (host === undefined) {
    if (parsed.entries.length === 0) push("error", "holds no host key entries", { expected: "a line: <sshHostname> <key type> <base64 key>" });
    return;
  }
  const usable = parsed.entries.filter((e) => e.marker !== "@revoked");
  const matching = usable.filter((e) => patternsMatch(e.patterns, host));
  if (matching.length > 0) return;
  const ports = usable.flatMap((e) => bracketedPortsFor(e.patterns, host).map((port) => ({ port, line: e.line })));
  if (ports.length > 0) {
    const first = ports[0]!;
    push("error", `line ${first.line} names [${host}]:${first.port}, but JupyterHub connects to ${host} on port 22, which ssh looks up as the bare name`, {
      line: first.line,
      key: "sshHostname",
      expected: `an entry starting with ${host} (no brackets, no port)`,
    });
    return;
  }
  push("error", `has no entry for sshHostname ${JSON.stringify(host)} (from ${DEPLOY_CONFIGMAP_FILE})`, {
    key: "sshHostname",
    expected: `a line: ${host} <key type> <base64 key>; e.g. printf '%s ' ${host} > ssh_known_hosts && cat /etc/ssh/ssh_host_ed25519_key.pub >> ssh_known_hosts (on the SSH server)`,
  });
}

function checkZenithConfig(text: string, push: Push): void {
  for (const { severity, message, ...where } of checkZenithClientConfig(text)) push(severity, message, where);
}
