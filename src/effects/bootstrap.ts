/**
 * Base images bootstrapped from Debian packages, for sites that cannot pull the public bases
 * (quay.io/jupyterhub/jupyterhub, docker.io/nathanhess/slurm): mmdebstrap builds a root file
 * system from the machine's own apt sources and `podman import` turns it into an image that
 * provides what docs/ARCHITECTURE.md "What a base image must provide" asks for.
 *
 * Images carry a label with a hash of everything that went into them (suite, packages, files,
 * image settings, apt sources), so a re-run with the same inputs is a no-op. What the bases are
 * and the decisions made from that live in src/plan/bootstrapBases.ts; this module reads the
 * inputs and runs mmdebstrap and podman.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./exec.js";
import { imageLabel, podman } from "./podman.js";
import { repoRoot } from "../paths.js";
import { BOOTSTRAP_KEY_LABEL, bootstrapKey, importArgs, mmdebstrapArgs, sourcesForSuite, type BaseSpec } from "../plan/bootstrapBases.js";

/** The machine's own apt sources: the bootstrap uses its mirror and signing key. */
const DEFAULT_SOURCES_FILE = "/etc/apt/sources.list.d/debian.sources";

export interface BootstrapOptions {
  readonly sourcesFile?: string;
  readonly force?: boolean;
  readonly log?: (line: string) => void;
}

export interface BootstrapResult {
  readonly image: string;
  readonly key: string;
  readonly cached: boolean;
  readonly seconds: number;
}

export async function bootstrapBase(spec: BaseSpec, opts: BootstrapOptions = {}): Promise<BootstrapResult> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const root = repoRoot();
  const sourcesText = await readFile(opts.sourcesFile ?? DEFAULT_SOURCES_FILE, "utf8");
  const sources = sourcesForSuite(sourcesText, spec.suite);
  const fileContents = await Promise.all(spec.files.map((f) => readFile(join(root, f.from), "utf8")));
  const key = bootstrapKey(spec, fileContents, sources);
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;

  if (!opts.force && (await imageLabel(spec.image, BOOTSTRAP_KEY_LABEL)) === key) {
    log(`${spec.image}: up to date (key ${key.slice(0, 12)})`);
    return { image: spec.image, key, cached: true, seconds: seconds() };
  }

  const work = await mkdtemp(join(tmpdir(), "brics-env-bootstrap-"));
  try {
    const tarPath = join(work, "rootfs.tar");
    log(`${spec.image}: mmdebstrap ${spec.suite} (${spec.packages.length} packages)…`);
    await run("mmdebstrap", mmdebstrapArgs(spec, tarPath, root), { input: sources });
    log(`${spec.image}: importing into podman…`);
    await podman(importArgs(spec, key, tarPath));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  log(`${spec.image}: built in ${seconds()} s`);
  return { image: spec.image, key, cached: false, seconds: seconds() };
}
