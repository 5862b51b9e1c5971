/**
 * The version setuptools-scm gives a git checkout, computed from `git describe` on the host, so
 * image builds need neither git nor the repository's history (the build is handed the result as
 * SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NAME>). Follows setuptools-scm's default schemes
 * (version "guess-next-dev", local "node-and-date"):
 *
 *   exactly on tag vX.Y.Z, clean        X.Y.Z
 *   N commits after vX.Y.Z              X.Y.(Z+1).devN+g<hash>
 *   uncommitted changes                 the same, or X.Y.(Z+1).dev0+g<hash> on the tag, plus .d<YYYYMMDD>
 *   no version tag reachable            0.1.devN+g<hash> (N = commits in HEAD's history)
 */

/** `git describe --tags --long --dirty --match '*[0-9]*'`, parsed. */
export interface Described {
  readonly tag: string;
  readonly distance: number;
  /** Abbreviated commit hash, without the `g` git puts in front. */
  readonly node: string;
  readonly dirty: boolean;
}

export class ScmVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScmVersionError";
  }
}

const DESCRIBE = /^(.+)-(\d+)-g([0-9a-f]{4,64})(-dirty)?$/;

export function parseDescribe(output: string): Described {
  const m = DESCRIBE.exec(output.trim());
  if (m === null) throw new ScmVersionError(`unexpected 'git describe' output ${JSON.stringify(output.trim())}`);
  return { tag: m[1]!, distance: Number(m[2]), node: m[3]!, dirty: m[4] !== undefined };
}

/** A release or pre-release tag as setuptools-scm reads it: an optional `v`, then a PEP 440 version. */
const TAG_VERSION = /^[vV]?(\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?)$/;

/** The version a tag names, or undefined when the tag is not a version tag setuptools-scm would take. */
export function tagVersion(tag: string): string | undefined {
  return TAG_VERSION.exec(tag)?.[1];
}

/** setuptools-scm's guess of the next version: the last number of the tag's version, plus one. */
function nextVersion(version: string): string {
  return version.replace(/(\d+)(?!.*\d)/, (n) => String(Number(n) + 1));
}

function localPart(node: string | undefined, dirty: boolean, today: Date): string {
  const date = `d${today.toISOString().slice(0, 10).replaceAll("-", "")}`;
  const parts = [...(node === undefined ? [] : [`g${node}`]), ...(dirty ? [date] : [])];
  return parts.length === 0 ? "" : `+${parts.join(".")}`;
}

export function versionFromDescribe(d: Described, today: Date = new Date()): string {
  const base = tagVersion(d.tag);
  if (base === undefined) {
    throw new ScmVersionError(`tag ${d.tag} is not a version tag (expected vX.Y.Z, X.Y.Z, or with a pre-release such as v1.0rc1)`);
  }
  if (d.distance === 0 && !d.dirty) return base;
  return `${nextVersion(base)}.dev${d.distance}${localPart(d.node, d.dirty, today)}`;
}

/** A checkout with no version tag in its history: setuptools-scm's fallback. */
export function versionWithoutTag(commits: number, node: string, dirty: boolean, today: Date = new Date()): string {
  return `0.1.dev${commits}${localPart(node, dirty, today)}`;
}

/**
 * The suffix of setuptools-scm's per-distribution override variable: the distribution name with
 * runs of `-`, `_` and `.` made one `_`, upper case.
 */
export function pretendVersionSuffix(distribution: string): string {
  return distribution.replace(/[-_.]+/g, "_").toUpperCase();
}

/** The name setuptools-scm reads for a distribution's version when it is given rather than computed. */
export function pretendVersionVariable(distribution: string): string {
  return `SETUPTOOLS_SCM_PRETEND_VERSION_FOR_${pretendVersionSuffix(distribution)}`;
}
