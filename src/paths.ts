import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/**
 * The repository (package) root: where package.json, the Containerfiles and the volume trees
 * live. Found from this module's own location so it holds both for `src/` run through `dist/`
 * and for an installed package.
 */
export function repoRoot(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json"))) {
      cached = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the brics_jupyterhub_envs package root");
    dir = parent;
  }
}

/** This package's version (package.json), or 0.0.0 when it cannot be read. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(repoRoot(), "package.json"), "utf8")) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/**
 * Where brics-env keeps what it may forget: `$XDG_CACHE_HOME/brics-env`, or `~/.cache/brics-env`
 * when that is unset or relative (the XDG spec has a relative path ignored, not taken from the
 * working directory).
 */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env["XDG_CACHE_HOME"];
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), ".cache"), "brics-env");
}
