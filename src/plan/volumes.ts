/**
 * The named volumes of an environment: what they are called, which tree of the repository
 * fills them, who owns their contents, and where each container mounts which part of them.
 * The Pod in manifest.ts takes its volume mounts from here, so the layout of `volumes/<kind>`
 * and the mounts cannot drift apart.
 */
import type { ContainerName, Environment } from "./environments.js";
import { volumeName, type VolumeKind } from "./names.js";

export interface VolumeOwner {
  readonly user: string;
  readonly uid: number;
  readonly group: string;
  readonly gid: number;
}

/** A part of a volume mounted into a container; `subPath` is relative to the volume root. */
export interface VolumeMountPlan {
  readonly container: ContainerName;
  readonly mountPath: string;
  readonly subPath: string;
  readonly readOnly: boolean;
}

export interface VolumePlan {
  readonly kind: VolumeKind;
  /** The podman volume name (also the PersistentVolumeClaim name in the manifest). */
  readonly name: string;
  /** Name of the volume in the Pod spec (a DNS-1123 label). */
  readonly podVolumeName: string;
  /** Directory, relative to the repository root, whose contents become the volume's contents. */
  readonly sourceDir: string;
  readonly owner: VolumeOwner;
  readonly mounts: readonly VolumeMountPlan[];
}

/**
 * The variables that override volume owners (FACTS.md), by volume and field. slurm_home has none:
 * /home is root's, and each home in it belongs to its user (the Slurm image's create-dev-users).
 */
export const OWNER_VARIABLES: Readonly<Partial<Record<VolumeKind, Readonly<Record<keyof VolumeOwner, string>>>>> = {
  jupyterhub_root: { user: "JUPYTERUSER", uid: "JUPYTERUSER_UID", group: "JUPYTERGROUP", gid: "JUPYTERGROUP_GID" },
  slurm_root: { user: "SLURMUSER", uid: "SLURMUSER_UID", group: "SLURMGROUP", gid: "SLURMGROUP_GID" },
};

export const DEFAULT_OWNERS: Readonly<Record<VolumeKind, VolumeOwner>> = {
  jupyterhub_root: { user: "root", uid: 0, group: "root", gid: 0 },
  slurm_root: { user: "slurm", uid: 64030, group: "slurm", gid: 64030 },
  slurm_home: { user: "root", uid: 0, group: "root", gid: 0 },
};

/**
 * Mount points of each volume. Every sub-path mirrors its mount path, so the source tree reads
 * like the container's file system: `volumes/slurm_root/var/log/sshd.log` is the file mounted
 * at `/var/log/sshd.log`. File mounts (the logs) need the file to exist in the tree.
 */
const MOUNTS: Readonly<Record<VolumeKind, ReadonlyArray<Omit<VolumeMountPlan, "subPath">>>> = {
  jupyterhub_root: [
    { container: "jupyterhub", mountPath: "/etc/jupyterhub", readOnly: true },
    { container: "jupyterhub", mountPath: "/srv/jupyterhub", readOnly: false },
    { container: "jupyterhub", mountPath: "/var/log/jupyterhub", readOnly: false },
  ],
  slurm_root: [
    { container: "slurm", mountPath: "/var/log/sshd.log", readOnly: false },
    { container: "slurm", mountPath: "/var/log/slurmctld.log", readOnly: false },
    { container: "slurm", mountPath: "/var/log/slurmd.log", readOnly: false },
    { container: "slurm", mountPath: "/var/spool/slurmctld", readOnly: false },
    { container: "slurm", mountPath: "/var/spool/slurmd", readOnly: false },
  ],
  slurm_home: [{ container: "slurm", mountPath: "/home", readOnly: false }],
};

/**
 * The file the Slurm image's start script (brics_slurm/scripts/start-slurm.sh) writes once sshd
 * accepts connections and slurmctld answers. It lies on the slurm_root volume, so `up` watches it
 * from the host instead of probing through `podman exec`, a process that competes with the
 * starting hub for the processors.
 */
export const SLURM_READY_FILE = "/var/spool/slurmd/brics-env-ready";

/** Every sub-path mirrors its mount path (see MOUNTS). */
function subPathOf(mountPath: string): string {
  return mountPath.replace(/^\//, "");
}

/** Where `containerPath`, a file under one of `kind`'s mounts, lies in the volume (relative to its root). */
export function pathInVolume(kind: VolumeKind, containerPath: string): string {
  const mount = MOUNTS[kind].find((m) => containerPath.startsWith(`${m.mountPath}/`));
  if (mount === undefined) throw new Error(`${containerPath} is under no mount of the ${kind} volume`);
  return `${subPathOf(mount.mountPath)}${containerPath.slice(mount.mountPath.length)}`;
}

export class VolumeOwnerError extends Error {
  constructor(readonly problems: ReadonlyArray<{ variable: string; message: string }>) {
    super(problems.map((p) => `${p.variable}: ${p.message}`).join("; "));
    this.name = "VolumeOwnerError";
  }
}

const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const MAX_ID = 2 ** 32 - 2; // 2^32-1 is (uid_t)-1, "no change"

function ownerFor(kind: VolumeKind, vars: Readonly<Record<string, string | undefined>>, problems: Array<{ variable: string; message: string }>): VolumeOwner {
  const names = OWNER_VARIABLES[kind];
  const def = DEFAULT_OWNERS[kind];
  if (names === undefined) return def;
  const text = (field: "user" | "group"): string => {
    const variable = names[field];
    const v = vars[variable];
    if (v === undefined || v === "") return def[field];
    if (!NAME.test(v)) {
      problems.push({ variable, message: `${JSON.stringify(v)} is not a valid ${field} name (lower case letters, digits, _ and -, starting with a letter or _, at most 32)` });
    }
    return v;
  };
  const id = (field: "uid" | "gid"): number => {
    const variable = names[field];
    const v = vars[variable];
    if (v === undefined || v === "") return def[field];
    if (!/^(0|[1-9][0-9]*)$/.test(v) || Number(v) > MAX_ID) {
      problems.push({ variable, message: `${JSON.stringify(v)} is not a numeric ${field === "uid" ? "user" : "group"} id (0 to ${MAX_ID})` });
      return def[field];
    }
    return Number(v);
  };
  return { user: text("user"), uid: id("uid"), group: text("group"), gid: id("gid") };
}

/**
 * The files of volumes/ that go into volumes, one per line relative to volumes/: exactly those
 * git tracks there (a unit test keeps the list equal to `git ls-files volumes`). A committed list
 * rather than `git ls-files` at run time, so the rule is the same in a checkout and in an installed
 * package without .git or git, and whatever else lies in the tree (__pycache__, editor backups,
 * a developer's local state) never reaches a volume; adding a file to a volume is a reviewed change.
 */
export const TRACKED_FILES_LIST = "volumes/tracked-files.txt";

/** Files that exist only so git keeps an empty directory; they do not belong in a volume. */
export const PLACEHOLDER_FILES: ReadonlySet<string> = new Set([".gitkeep"]);

export function renderTrackedFilesList(paths: readonly string[]): string {
  const header = [
    "# The files under volumes/ that brics-env puts into volumes (relative to volumes/); nothing else",
    "# there reaches a volume. Generated: the unit tests keep it equal to `git ls-files volumes`;",
    "# after adding or removing a file, regenerate it with: npx tsc -p . && UPDATE_GOLDEN=1 node --test dist/test/unit/",
  ];
  return [...header, ...[...paths].sort(), ""].join("\n");
}

/** The paths of `kind`'s volume in the list, relative to its source directory (volumes/<kind>). */
export function trackedFilesOf(listText: string, kind: VolumeKind): string[] {
  const prefix = `${kind}/`;
  return listText
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

export function volumeKindsOf(env: Environment): VolumeKind[] {
  return env.slurm === "pod" ? ["jupyterhub_root", "slurm_root", "slurm_home"] : ["jupyterhub_root"];
}

/**
 * The volumes of `env`. `ownerVariables` holds the caller's values of the owner variables
 * (JUPYTERUSER … SLURMGROUP_GID); any that are invalid are reported together in a
 * VolumeOwnerError, each naming its variable.
 */
export function volumesOf(env: Environment, ownerVariables: Readonly<Record<string, string | undefined>> = {}): VolumePlan[] {
  const problems: Array<{ variable: string; message: string }> = [];
  const plans = volumeKindsOf(env).map((kind) => ({
    kind,
    name: volumeName(kind, env.name),
    podVolumeName: kind.replaceAll("_", "-"),
    sourceDir: `volumes/${kind}`,
    owner: ownerFor(kind, ownerVariables, problems),
    mounts: MOUNTS[kind].map((m) => ({ ...m, subPath: subPathOf(m.mountPath) })),
  }));
  if (problems.length > 0) throw new VolumeOwnerError(problems);
  return plans;
}
