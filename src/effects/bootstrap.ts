/**
 * Base images bootstrapped from Debian packages, for sites that cannot pull the public bases
 * (quay.io/jupyterhub/jupyterhub, docker.io/nathanhess/slurm): mmdebstrap builds a root file
 * system from the machine's own apt sources and `podman import` turns it into an image that
 * provides what docs/ARCHITECTURE.md "What a base image must provide" asks for.
 *
 * Images carry a label with a hash of everything that went into them (suite, packages, files,
 * image settings, apt sources), so a re-run with the same inputs is a no-op.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./exec.js";
import { imageLabel, podman } from "./podman.js";
import { repoRoot } from "../paths.js";
import { BASE_IMAGE_VARIABLE } from "../plan/images.js";

const BOOTSTRAP_KEY_LABEL = "io.github.brics-env.bootstrap-key";
const DEFAULT_SOURCES_FILE = "/etc/apt/sources.list.d/debian.sources";

export type BaseKind = "jupyterhub" | "slurm";

export interface BaseFile {
  /** Path relative to the package root. */
  readonly from: string;
  /** Absolute path inside the image. */
  readonly to: string;
  readonly mode: string;
}

export interface BaseSpec {
  readonly kind: BaseKind;
  readonly image: string;
  /** The brics-env variable that makes the Containerfile build on this image. */
  readonly envVar: string;
  readonly suite: string;
  readonly packages: readonly string[];
  readonly files: readonly BaseFile[];
  /** `podman import --change` instructions. */
  readonly changes: readonly string[];
}

export const BASES: readonly BaseSpec[] = [
  {
    kind: "jupyterhub",
    image: "localhost/brics_jupyterhub_base:debian-trixie",
    envVar: BASE_IMAGE_VARIABLE.brics_jupyterhub,
    suite: "trixie",
    packages: [
      "ca-certificates",
      "curl",
      "jupyterhub",
      "node-configurable-http-proxy",
      "python3-jwt",
      "python3-pip",
      "python3-setuptools",
      "python3-setuptools-scm",
      "python3-wheel",
    ],
    files: [],
    changes: [
      "ENV LANG=C.UTF-8",
      // The public image's Python is not "externally managed"; Debian's is. Containerfiles
      // written for the public image run plain `pip install`.
      "ENV PIP_BREAK_SYSTEM_PACKAGES=1",
      "WORKDIR /srv/jupyterhub",
      "EXPOSE 8000",
      'CMD ["jupyterhub"]',
    ],
  },
  {
    kind: "slurm",
    image: "localhost/brics_slurm_base:debian-trixie",
    envVar: BASE_IMAGE_VARIABLE.brics_slurm,
    suite: "trixie",
    packages: [
      "ca-certificates",
      "curl",
      "munge",
      "procps",
      "python3",
      "python3-pip",
      "python3-setuptools",
      "python3-venv",
      "python3-wheel",
      "slurm-wlm",
    ],
    files: [
      { from: "bases/slurm/startup.sh", to: "/etc/startup.sh", mode: "0755" },
      { from: "bases/slurm/slurm.conf.template", to: "/etc/slurm/slurm.conf.template", mode: "0644" },
    ],
    changes: [
      "ENV LANG=C.UTF-8",
      'CMD ["/bin/sh", "-c", "/etc/startup.sh && exec tail -f /var/log/slurmctld.log"]',
    ],
  },
];

/**
 * The first deb822 stanza of an apt sources file, with its suites replaced by `suite`: the
 * machine's own mirror (and signing key) serves the bootstrap, whatever Debian release the
 * machine runs. The mirror's host name is read at run time, never stored.
 */
export function sourcesForSuite(sourcesText: string, suite: string): string {
  const stanzas = sourcesText
    .split(/\n\s*\n/)
    .map((s) => s.trim())
    .filter((s) => s.split("\n").some((line) => /^URIs:/i.test(line)));
  const first = stanzas[0];
  if (first === undefined) {
    throw new Error("the apt sources file has no deb822 stanza with a URIs: field");
  }
  const lines = first.split("\n").filter((line) => !line.startsWith("#"));
  const out = lines.map((line) => (/^Suites:/i.test(line) ? `Suites: ${suite}` : line));
  if (!out.some((line) => /^Suites:/i.test(line))) out.push(`Suites: ${suite}`);
  return `${out.join("\n")}\n`;
}

/** Hash of every input of a base image; equal keys mean an identical bootstrap. */
export function bootstrapKey(spec: BaseSpec, fileContents: readonly string[], sources: string): string {
  const hash = createHash("sha256");
  hash.update(
    JSON.stringify({
      suite: spec.suite,
      packages: [...spec.packages].sort(),
      files: spec.files.map((f, i) => ({ to: f.to, mode: f.mode, content: fileContents[i] })),
      changes: spec.changes,
      sources,
    }),
  );
  return hash.digest("hex").slice(0, 32);
}

/** The mmdebstrap arguments that write `spec`'s root file system as a tar to `outTar`. */
export function mmdebstrapArgs(spec: BaseSpec, outTar: string, root: string): string[] {
  const args = ["--variant=apt", "--format=tar", `--include=${spec.packages.join(",")}`];
  // Documentation is most of the weight of these images and nothing in a container reads it.
  for (const path of ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*"]) {
    args.push(`--dpkgopt=path-exclude=${path}`);
  }
  args.push("--dpkgopt=path-include=/usr/share/doc/*/copyright");
  for (const f of spec.files) {
    args.push(`--customize-hook=upload ${join(root, f.from)} ${f.to}`);
    args.push(`--customize-hook=chmod ${f.mode} "$1${f.to}"`);
  }
  // Host keys made while installing packages must not be baked into an image.
  args.push('--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*');
  args.push(spec.suite, outTar, "-");
  return args;
}

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
    const changeArgs = [...spec.changes, `LABEL ${BOOTSTRAP_KEY_LABEL}=${key}`].flatMap((c) => ["--change", c]);
    await podman(["import", ...changeArgs, tarPath, spec.image]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  log(`${spec.image}: built in ${seconds()} s`);
  return { image: spec.image, key, cached: false, seconds: seconds() };
}
