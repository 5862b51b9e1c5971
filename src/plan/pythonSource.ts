/**
 * What `resources` needs to know about a Python package it hands to an image build: its
 * distribution name, and where its version comes from. Read from the file names of wheels and
 * sdists, and from a source tree's pyproject.toml / PKG-INFO / setup.py text (passed in).
 *
 * pyproject.toml is read for a handful of keys only ([project] name, version, dynamic;
 * [build-system] requires; whether [tool.setuptools_scm] exists), not parsed as full TOML.
 */

export type VersionSource =
  /** Fixed in the metadata (pyproject [project] version, or a wheel/sdist file name). */
  | { readonly kind: "static"; readonly version: string }
  /** Taken from git tags by setuptools-scm: needs a clone, an unpacked sdist (PKG-INFO) or a given version. */
  | { readonly kind: "scm" }
  /** Written in setup.py or elsewhere we do not read: pip will know. */
  | { readonly kind: "unknown" };

export interface PythonSourceFacts {
  /** Distribution name as declared; undefined when the tree declares it only in setup.py. */
  readonly name: string | undefined;
  readonly version: VersionSource;
}

interface TomlSections {
  [section: string]: Map<string, string>;
}

/**
 * Top-level `key = value` pairs per `[section]`, values as raw text (multi-line arrays joined).
 * Enough for the keys we read; comments and blank lines skipped.
 */
function tomlSections(text: string): TomlSections {
  const sections: TomlSections = { "": new Map() };
  let current = "";
  let pendingKey: string | undefined;
  let pendingValue = "";
  let depth = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\s+#.*$/, "").trim();
    if (pendingKey !== undefined) {
      pendingValue += ` ${line}`;
      depth += (line.match(/\[/g) ?? []).length - (line.match(/\]/g) ?? []).length;
      if (depth <= 0) {
        sections[current]!.set(pendingKey, pendingValue.trim());
        pendingKey = undefined;
      }
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[\[?\s*([^\]]+?)\s*\]\]?$/.exec(line);
    if (header !== null) {
      current = header[1]!.replace(/["']/g, "");
      sections[current] ??= new Map();
      continue;
    }
    const kv = /^([A-Za-z0-9_.\-"']+)\s*=\s*(.*)$/.exec(line);
    if (kv === null) continue;
    const key = kv[1]!.replace(/["']/g, "");
    const value = kv[2]!;
    depth = (value.match(/\[/g) ?? []).length - (value.match(/\]/g) ?? []).length;
    if (value.startsWith("[") && depth > 0) {
      pendingKey = key;
      pendingValue = value;
    } else {
      sections[current]!.set(key, value);
    }
  }
  return sections;
}

function tomlString(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const m = /^(?:"([^"]*)"|'([^']*)')$/.exec(raw.trim());
  return m === null ? undefined : (m[1] ?? m[2]);
}

const SCM = /setuptools[-_]scm/i;

/** Facts from a source tree's files; `pkgInfo` is the text of PKG-INFO when the tree is an unpacked sdist. */
export function sourceTreeFacts(files: { pyproject?: string; pkgInfo?: string; setupPy?: string; setupCfg?: string }): PythonSourceFacts {
  if (files.pkgInfo !== undefined) {
    // An unpacked sdist: its metadata is final, whatever built it (setuptools-scm reads PKG-INFO too).
    const name = /^Name:\s*(\S+)\s*$/m.exec(files.pkgInfo)?.[1];
    const version = /^Version:\s*(\S+)\s*$/m.exec(files.pkgInfo)?.[1];
    return { name, version: version === undefined ? { kind: "unknown" } : { kind: "static", version } };
  }
  const toml = files.pyproject === undefined ? undefined : tomlSections(files.pyproject);
  const project = toml?.["project"];
  const name = tomlString(project?.get("name"));
  const staticVersion = tomlString(project?.get("version"));
  if (staticVersion !== undefined) return { name, version: { kind: "static", version: staticVersion } };
  const usesScm =
    toml?.["tool.setuptools_scm"] !== undefined ||
    SCM.test(toml?.["build-system"]?.get("requires") ?? "") ||
    /use_scm_version/.test(files.setupPy ?? "") ||
    SCM.test(files.setupCfg ?? "");
  return { name, version: usesScm ? { kind: "scm" } : { kind: "unknown" } };
}

/** `name-version(-build)?-py-abi-platform.whl` (names use `_` for `-`, as wheels spell them). */
export function wheelFacts(fileName: string): PythonSourceFacts | undefined {
  const m = /^([A-Za-z0-9_.]+)-([^-]+)(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$/.exec(fileName);
  return m === null ? undefined : { name: m[1]!, version: { kind: "static", version: m[2]! } };
}

/** `name-version.tar.gz` / `.zip`: the version is what follows the last `-` that starts a number. */
export function sdistFacts(fileName: string): PythonSourceFacts | undefined {
  const m = /^(.+?)-(\d[^-]*)\.(?:tar\.gz|zip)$/.exec(fileName);
  return m === null ? undefined : { name: m[1]!, version: { kind: "static", version: m[2]! } };
}

/** PEP 503 normalised distribution name, as pip and importlib compare them. */
export function normaliseName(name: string): string {
  return name.replace(/[-_.]+/g, "-").toLowerCase();
}

/** Characters a version may have when it is written into a build's expected-versions file. */
export const SAFE_VERSION = /^[A-Za-z0-9.+!_-]+$/;
