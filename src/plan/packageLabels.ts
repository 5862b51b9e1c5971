/**
 * Image labels saying which Python packages an image was built from: for each distribution
 * `org.brics-env.package.<name>.version` and `org.brics-env.package.<name>.ref` (a git
 * description, a file name, or the pip requirement). `resources` writes them, `status` reads them.
 */
import { normaliseName } from "./pythonSource.js";

export const PACKAGE_LABEL_PREFIX = "org.brics-env.package.";

export interface PackageProvenance {
  readonly name: string;
  readonly version?: string | undefined;
  readonly ref: string;
}

export function packageLabels(packages: readonly PackageProvenance[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const p of packages) {
    const name = normaliseName(p.name);
    if (p.version !== undefined) labels[`${PACKAGE_LABEL_PREFIX}${name}.version`] = p.version;
    labels[`${PACKAGE_LABEL_PREFIX}${name}.ref`] = p.ref;
  }
  return labels;
}

export function packagesFromLabels(labels: Readonly<Record<string, string>> | null | undefined): Record<string, { version?: string; ref?: string }> {
  const packages: Record<string, { version?: string; ref?: string }> = {};
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!key.startsWith(PACKAGE_LABEL_PREFIX)) continue;
    const m = /^(.+)\.(version|ref)$/.exec(key.slice(PACKAGE_LABEL_PREFIX.length));
    if (m === null) continue;
    const entry = (packages[m[1]!] ??= {});
    entry[m[2] as "version" | "ref"] = value;
  }
  return packages;
}

/** The distribution a pip requirement names (`name @ url`, `name==1.0`, `name`), and the requirement without credentials. */
export function requirementProvenance(requirement: string): PackageProvenance | undefined {
  const name = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(requirement)?.[1];
  if (name === undefined) return undefined;
  // user:token@ in a URL must never reach an image label.
  return { name, ref: requirement.trim().replace(/(:\/\/)[^/@\s]+@/g, "$1") };
}
