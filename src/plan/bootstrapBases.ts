/**
 * The offline base images as data: which images, which Debian suite and packages, which files and
 * image settings, and the decisions made from them (the apt sources for a suite, the cache key,
 * mmdebstrap's and `podman import`'s arguments). src/effects/bootstrap.ts reads the inputs and runs
 * the tools; nothing here touches the machine.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { BASE_IMAGE_VARIABLE } from "./images.js";

/** The label holding the hash of everything that went into a bootstrapped base. */
export const BOOTSTRAP_KEY_LABEL = "io.github.brics-env.bootstrap-key";

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

/** The value of `bootstrap-bases --only`: a comma-separated list of base kinds. */
export function parseBaseKinds(value: string): BaseKind[] {
  const kinds = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const k of kinds) {
    if (!BASES.some((b) => b.kind === k)) {
      throw new Error(`--only: unknown base '${k}'; expected ${BASES.map((b) => b.kind).join(" or ")}`);
    }
  }
  return kinds as BaseKind[];
}

/** The bases to bootstrap: those of `only`, or all of them when it is absent or empty. */
export function selectBases(only?: readonly BaseKind[]): BaseSpec[] {
  return BASES.filter((b) => only === undefined || only.length === 0 || only.includes(b.kind));
}

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

/** The `podman import` arguments that make `spec`'s image from `tarPath`, labelled with its key. */
export function importArgs(spec: BaseSpec, key: string, tarPath: string): string[] {
  const changes = [...spec.changes, `LABEL ${BOOTSTRAP_KEY_LABEL}=${key}`].flatMap((c) => ["--change", c]);
  return ["import", ...changes, tarPath, spec.image];
}
