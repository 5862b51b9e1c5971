/**
 * podman's version, remembered between runs. `podman version` is the most expensive of the calls
 * `up` makes before its play (about 80 ms of processor on the 2-core machine, where the others take
 * 30–40), and a local podman's answer only changes with its binary. So a local answer is kept in
 * the user's cache directory under a key made of everything that decides it: the binary (path,
 * inode, size, time) and podman's settings that can make it a remote client (CONTAINER_HOST,
 * CONTAINER_CONNECTION, CONTAINERS_CONF and the containers.conf files). A remote client's answer
 * is the server's, which changes without the client knowing, so it is never kept. A cache that
 * cannot be read or written is simply not used.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { userCacheDir } from "../paths.js";

/** Environment variables that podman reads to decide whether it is a remote client, or where its settings are. */
const SETTING_VARIABLES = ["CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINERS_CONF", "CONTAINERS_CONF_OVERRIDE"] as const;

function configHome(env: NodeJS.ProcessEnv): string {
  return env["XDG_CONFIG_HOME"] || join(homedir(), ".config");
}

/** The containers.conf files and drop-in directories podman reads (containers-common's order). */
function settingFiles(env: NodeJS.ProcessEnv): string[] {
  const user = join(configHome(env), "containers");
  return [
    "/usr/share/containers/containers.conf",
    "/usr/share/containers/containers.conf.d",
    "/etc/containers/containers.conf",
    "/etc/containers/containers.conf.d",
    join(user, "containers.conf"),
    join(user, "containers.conf.d"),
  ];
}

/** Identity and time of a file; of a directory, also of each file in it (a drop-in edited in place). */
function fileFacts(path: string): string {
  try {
    const st = statSync(path);
    const own = `${path}:${st.ino}:${st.size}:${st.mtimeMs}`;
    if (!st.isDirectory()) return own;
    return [own, ...readdirSync(path).sort().map((name) => fileFacts(join(path, name)))].join("|");
  } catch {
    return `${path}:-`;
  }
}

/** What a remembered answer is valid for; undefined when the binary cannot be looked at. */
export function versionCacheKey(binary: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const facts = fileFacts(binary);
  if (facts.endsWith(":-")) return undefined;
  const settings = SETTING_VARIABLES.map((v) => `${v}=${env[v] ?? ""}`);
  const files = [env["CONTAINERS_CONF"], env["CONTAINERS_CONF_OVERRIDE"], ...settingFiles(env)].filter((f): f is string => f !== undefined && f !== "");
  return JSON.stringify([facts, ...settings, ...files.map(fileFacts)]);
}

export function versionCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(userCacheDir(env), "podman-version.json");
}

/** The version a local podman reported under `key`, if it was remembered. */
export function rememberedVersion(key: string, file = versionCacheFile()): string | undefined {
  try {
    const entry = JSON.parse(readFileSync(file, "utf8")) as { key?: unknown; version?: unknown };
    return entry.key === key && typeof entry.version === "string" ? entry.version : undefined;
  } catch {
    return undefined;
  }
}

/** Remembers a local podman's version (one entry: the podman in use). */
export function rememberVersion(key: string, version: string, file = versionCacheFile()): void {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const temporary = `${file}.${process.pid}`;
    writeFileSync(temporary, `${JSON.stringify({ key, version })}\n`, { mode: 0o600 });
    renameSync(temporary, file);
  } catch {
    // A read-only home only costs the next run a `podman version`.
  }
}
