/**
 * Image build steps per environment: which Containerfile, stage, tag and build arguments, and
 * which development repositories `resources` clones into the build contexts first.
 * Pins live in each image's argfile.conf; this module only reads them (text passed in) and lays
 * the caller's overrides (BRICS_ENV_* variables, passed in as a record) on top.
 */
import type { Environment } from "./environments.js";
import { indexSecrets, splitIndexCredentials, type BuildSecret } from "./indexCredentials.js";
import { imageRef, type ImageName } from "./names.js";

export const ZENITH_CLIENT_IMAGE_DEFAULT = "ghcr.io/azimuth-cloud/zenith-client:0.16.1";
export const ZENITH_CLIENT_IMAGE_VARIABLE = "BRICS_ENV_ZENITH_CLIENT_IMAGE";

export type DevRepoName = "bricsauthenticator" | "slurmspawner_wrappers";

export interface DevRepo {
  readonly name: DevRepoName;
  readonly url: string;
  /** Tag or branch to check out: the pin of the image's requirement, so dev and prod agree. */
  readonly ref: string;
  /** Clone destination relative to the repository root. */
  readonly dest: string;
  /** Variable that overrides `url`. */
  readonly urlVariable: string;
  /** Variable that overrides `ref` (a tag, branch or commit). */
  readonly refVariable: string;
}

export interface ImageBuild {
  readonly image: ImageName;
  /** Build context, relative to the repository root. */
  readonly contextDir: string;
  readonly containerfile: string;
  readonly target: "stage-dev" | "stage-prod";
  readonly tag: string;
  /** Passed as `--build-arg KEY=value`, in argfile order, overrides last. */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Repositories to clone into `<contextDir>/_dev_build_data` (dev stage only). */
  readonly devRepos: readonly DevRepo[];
  /** The pip requirement stage-base installs when no packages are staged. */
  readonly requirement: string | undefined;
  /**
   * Distributions stage-base installs from `_build_data/python_packages` (the Containerfile's
   * `--only`); undefined: all of them.
   */
  readonly installsOnly: readonly string[] | undefined;
  /**
   * Build secrets (`podman build --secret`): the netrc of the package index's user name and
   * password, when PIP_INDEX_URL held them; buildArgs then hold the URL without them.
   */
  readonly secrets: readonly BuildSecret[];
}

interface DevRepoDefault {
  readonly name: DevRepoName;
  readonly url: string;
  readonly ref: string;
  readonly urlVariable: string;
  readonly refVariable: string;
  /** Argfile key whose pip requirement pins the same package (`… .git@<ref>`). */
  readonly requirementArg: string;
}

interface ImageDefault {
  readonly image: ImageName;
  readonly devRepo: DevRepoDefault;
  /** BRICS_ENV_* variable -> build arg it overrides. */
  readonly overrides: Readonly<Record<string, string>>;
  /** What stage-base installs from the packages directory (must match the Containerfile's --only). */
  readonly installsOnly?: readonly string[];
}

/**
 * Which Jupyter user environment the Slurm image carries (build arg JUPYTER_USER_ENV): `miniforge`
 * (conda-forge, the default) or `debian` (Debian's JupyterLab packages, for sites without conda-forge).
 */
export const JUPYTER_USER_ENV_VARIABLE = "BRICS_ENV_JUPYTER_USER_ENV";
export const JUPYTER_USER_ENVS = ["miniforge", "debian"] as const;

/**
 * What an offline or air-gapped site can do instead of pulling the public base images (said when a
 * base image cannot be pulled), naming every seam the builds fetch through.
 */
export const OFFLINE_BUILD_ADVICE: readonly string[] = [
  "or build Debian-based equivalents offline with `brics-env bootstrap-bases` and export the BRICS_ENV_*_BASE_IMAGE lines it prints",
  "the image builds also fetch Python packages and (dev stage) git repositories: set BRICS_ENV_PIP_INDEX_URL to a package " +
    "index mirror or BRICS_ENV_PYTHON_PACKAGES to a directory of packages, and BRICS_ENV_BRICSAUTHENTICATOR_GIT_URL / " +
    "BRICS_ENV_SLURMSPAWNER_WRAPPERS_GIT_URL to reachable clones (or put clones in <image>/_dev_build_data/ yourself), " +
    "with BRICS_ENV_BRICSAUTHENTICATOR_REF / BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF naming a tag or commit your copies have",
  `the Slurm image's Jupyter user environment comes from conda-forge (Miniforge): set ${JUPYTER_USER_ENV_VARIABLE}=debian ` +
    "for JupyterLab from Debian's packages (needs a Debian 13 base, as bootstrap-bases makes), or " +
    "BRICS_ENV_MINIFORGE_DOWNLOAD_URL to a mirror of the Miniforge installers",
];

/** The brics-env variable that replaces each image's BASE_IMAGE (a mirror, or a bootstrapped base). */
export const BASE_IMAGE_VARIABLE: Readonly<Record<ImageName, string>> = {
  brics_jupyterhub: "BRICS_ENV_JUPYTERHUB_BASE_IMAGE",
  brics_slurm: "BRICS_ENV_SLURM_BASE_IMAGE",
};

const IMAGE_DEFAULTS: Readonly<Record<ImageName, ImageDefault>> = {
  brics_jupyterhub: {
    image: "brics_jupyterhub",
    devRepo: {
      name: "bricsauthenticator",
      url: "https://github.com/isambard-sc/bricsauthenticator.git",
      ref: "v0.8.0",
      urlVariable: "BRICS_ENV_BRICSAUTHENTICATOR_GIT_URL",
      refVariable: "BRICS_ENV_BRICSAUTHENTICATOR_REF",
      requirementArg: "BRICSAUTHENTICATOR_REQUIREMENT",
    },
    overrides: { [BASE_IMAGE_VARIABLE.brics_jupyterhub]: "BASE_IMAGE", BRICS_ENV_PIP_INDEX_URL: "PIP_INDEX_URL" },
  },
  brics_slurm: {
    image: "brics_slurm",
    devRepo: {
      name: "slurmspawner_wrappers",
      url: "https://github.com/isambard-sc/slurmspawner_wrappers.git",
      ref: "v0.2.1",
      urlVariable: "BRICS_ENV_SLURMSPAWNER_WRAPPERS_GIT_URL",
      refVariable: "BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF",
      requirementArg: "SLURMSPAWNER_WRAPPERS_REQUIREMENT",
    },
    overrides: {
      [BASE_IMAGE_VARIABLE.brics_slurm]: "BASE_IMAGE",
      BRICS_ENV_PIP_INDEX_URL: "PIP_INDEX_URL",
      BRICS_ENV_MINIFORGE_DOWNLOAD_URL: "MINIFORGE_DOWNLOAD_URL",
      [JUPYTER_USER_ENV_VARIABLE]: "JUPYTER_USER_ENV",
    },
    // The wrappers' venv holds the wrappers only: what sudo runs must not depend on anything else.
    installsOnly: ["slurmspawner_wrappers"],
  },
};

export class ArgfileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
    this.name = "ArgfileError";
  }
}

const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses an argfile.conf: `KEY=value` lines, `#` comment lines and blank lines. The value is
 * everything after the first `=`, taken literally (no quotes, no expansion), as
 * `--build-arg-file` does.
 */
export function parseArgfile(text: string, file = "argfile.conf"): Record<string, string> {
  const args: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq < 0) throw new ArgfileError(file, i + 1, `expected KEY=value, got ${JSON.stringify(line)}`);
    const key = line.slice(0, eq).trim();
    if (!ARG_NAME.test(key)) throw new ArgfileError(file, i + 1, `${JSON.stringify(key)} is not a valid build argument name`);
    if (key in args) throw new ArgfileError(file, i + 1, `${key} is set twice`);
    args[key] = line.slice(eq + 1);
  });
  return args;
}

const REQUIREMENT_REF = /\.git@([A-Za-z0-9._/-]+)\s*$/;

/** `pkg @ git+https://…/pkg.git@v1.2.3` -> `v1.2.3`. */
function refOfRequirement(requirement: string | undefined): string | undefined {
  return REQUIREMENT_REF.exec(requirement ?? "")?.[1];
}

/** A tag, branch or commit as git and pip take it; it also ends up in a pip requirement. */
const GIT_REF = /^[A-Za-z0-9._][A-Za-z0-9._/-]*$/;

export class RefVariableError extends Error {
  constructor(variable: string, value: string) {
    super(`${variable}=${value} is not a git tag, branch or commit (letters, digits and . _ / -, not starting with -)`);
    this.name = "RefVariableError";
  }
}

export function imagesOf(env: Environment): ImageName[] {
  return env.slurm === "pod" ? ["brics_jupyterhub", "brics_slurm"] : ["brics_jupyterhub"];
}

export interface ImageBuildInputs {
  /** Text of `<image>/argfile.conf` for each image the environment builds. */
  readonly argfiles: Partial<Readonly<Record<ImageName, string>>>;
  /** The caller's BRICS_ENV_* variables; unset or empty ones change nothing. */
  readonly variables?: Readonly<Record<string, string | undefined>>;
}

/** The images `env` builds, hub first. Throws ArgfileError on a malformed or missing argfile. */
export function imageBuilds(env: Environment, inputs: ImageBuildInputs): ImageBuild[] {
  const vars = inputs.variables ?? {};
  const set = (name: string): string | undefined => {
    const v = vars[name];
    return v === undefined || v === "" ? undefined : v;
  };
  return imagesOf(env).map((image) => {
    const defaults = IMAGE_DEFAULTS[image];
    const argfileName = `${image}/argfile.conf`;
    const text = inputs.argfiles[image];
    if (text === undefined) throw new ArgfileError(argfileName, 0, "the file is missing");
    const buildArgs = parseArgfile(text, argfileName);
    for (const [variable, arg] of Object.entries(defaults.overrides)) {
      const v = set(variable);
      if (v !== undefined) buildArgs[arg] = v;
    }
    const rawIndex = buildArgs["PIP_INDEX_URL"];
    const index = splitIndexCredentials(rawIndex ?? "", set("BRICS_ENV_PIP_INDEX_URL") !== undefined ? "BRICS_ENV_PIP_INDEX_URL" : `${argfileName}: PIP_INDEX_URL`);
    if (rawIndex !== undefined) buildArgs["PIP_INDEX_URL"] = index.url;
    const userEnv = buildArgs["JUPYTER_USER_ENV"];
    if (userEnv !== undefined && !(JUPYTER_USER_ENVS as readonly string[]).includes(userEnv)) {
      const where = set(JUPYTER_USER_ENV_VARIABLE) !== undefined ? JUPYTER_USER_ENV_VARIABLE : `${argfileName}: JUPYTER_USER_ENV`;
      throw new Error(`${where}=${JSON.stringify(userEnv)}: expected one of ${JUPYTER_USER_ENVS.join(", ")}`);
    }
    const repo = defaults.devRepo;
    const refOverride = set(repo.refVariable);
    if (refOverride !== undefined) {
      if (!GIT_REF.test(refOverride)) throw new RefVariableError(repo.refVariable, refOverride);
      // The image is built from that ref in both stages: the dev clone and the index requirement.
      const requirement = buildArgs[repo.requirementArg];
      if (requirement !== undefined && REQUIREMENT_REF.test(requirement)) {
        buildArgs[repo.requirementArg] = requirement.replace(REQUIREMENT_REF, `.git@${refOverride}`);
      }
    }
    const devRepos: DevRepo[] =
      env.stage === "dev"
        ? [
            {
              name: repo.name,
              url: set(repo.urlVariable) ?? repo.url,
              ref: refOverride ?? refOfRequirement(buildArgs[repo.requirementArg]) ?? repo.ref,
              dest: `${image}/_dev_build_data/${repo.name}`,
              urlVariable: repo.urlVariable,
              refVariable: repo.refVariable,
            },
          ]
        : [];
    return {
      image,
      contextDir: image,
      containerfile: `${image}/Containerfile`,
      target: env.stage === "dev" ? "stage-dev" : "stage-prod",
      tag: imageRef(image, env.stage),
      buildArgs,
      devRepos,
      requirement: buildArgs[repo.requirementArg],
      // The Debian user environment takes batchspawner from the same packages directory.
      installsOnly:
        defaults.installsOnly !== undefined && userEnv === "debian" ? [...defaults.installsOnly, "batchspawner"] : defaults.installsOnly,
      secrets: indexSecrets(index.credentials),
    };
  });
}

export function zenithClientImage(variables: Readonly<Record<string, string | undefined>> = {}): string {
  const v = variables[ZENITH_CLIENT_IMAGE_VARIABLE];
  return v === undefined || v === "" ? ZENITH_CLIENT_IMAGE_DEFAULT : v;
}
