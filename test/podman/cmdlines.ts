/**
 * The command lines of every process on this host while something runs: what any user of the host
 * can read in /proc/<pid>/cmdline. Build steps of rootful podman are processes of this host too.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface CmdlineWatch<T> {
  readonly result: T;
  /** Distinct command lines seen (NULs as spaces). */
  readonly seen: readonly string[];
  /** How many times every process was looked at. */
  readonly scans: number;
}

function scan(into: Set<string>): void {
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const line = readFileSync(`/proc/${pid}/cmdline`).toString("utf8").replaceAll("\0", " ").trim();
      if (line !== "") into.add(line);
    } catch {
      // The process ended between the listing and the read.
    }
  }
}

/** Runs `work` while scanning every process's command line every `everyMs`. */
export async function watchCmdlines<T>(work: () => Promise<T>, everyMs = 20): Promise<CmdlineWatch<T>> {
  const seen = new Set<string>();
  let scans = 0;
  let done = false;
  const scanner = (async () => {
    while (!done) {
      scan(seen);
      scans++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  try {
    const result = await work();
    return { result, seen: [...seen], scans };
  } finally {
    done = true;
    await scanner;
  }
}
