/**
 * What a backup archive holds and how it is checked before anything is restored from it. Pure:
 * effects/backupArchive.ts reads and writes the tar.gz, commands/backup.ts and restore.ts fill it
 * and apply it.
 *
 * An archive is a gzipped tar of:
 *   brics-env-backup.json     BackupManifest: format version, environment, and each file's size and sha256
 *   hub/<file>                the hub's state (HUB_STATE_FILES, and KEPT_HUB_FILES when present),
 *                             as brics_hub/hub_state.py snapshots it
 *   deploy/<file>             the deploy ConfigMap and the key files of the deploy directory
 * Everything else can be made again: combined.yaml is written from these, images and the hub's
 * configuration come from the repository, logs are not kept.
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { deployFilesFor, type DeployFileName } from "./deployFiles.js";
import type { EnvName, Environment } from "./environments.js";
import { HUB_SERVICES } from "./hubServices.js";

export const BACKUP_KIND = "brics-env-backup";
/** Bumped when the layout changes; restore refuses a format it does not know. */
export const BACKUP_FORMAT = 1;
export const BACKUP_MANIFEST = "brics-env-backup.json";
/** The files of /srv/jupyterhub that cannot be regenerated (brics_hub/hub_state.py STATE_FILES). */
export const HUB_STATE_FILES = ["jupyterhub.sqlite", "jupyterhub_cookie_secret", "jupyterhub_crypt_key"] as const;
export type HubStateFile = (typeof HUB_STATE_FILES)[number];
/**
 * Files of /srv/jupyterhub carried when present: the services' tokens, which the hub would make
 * afresh, but a Prometheus scraper holds a copy of its own.
 */
export const KEPT_HUB_FILES: readonly string[] = HUB_SERVICES.map((s) => basename(s.tokenFile));

export interface BackupFileEntry {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export interface BackupManifest {
  readonly kind: typeof BACKUP_KIND;
  readonly format: number;
  readonly environment: EnvName;
  /** ISO time the backup was taken. */
  readonly created: string;
  /** The brics-env version that wrote it. */
  readonly bricsEnv: string;
  /** The JupyterHub version that last wrote the database (its record in /srv/jupyterhub), if known. */
  readonly jupyterhub: string | null;
  readonly files: readonly BackupFileEntry[];
}

export interface BackupContents {
  readonly environment: EnvName;
  readonly jupyterhub: string | null;
  /** HUB_STATE_FILES, always; KEPT_HUB_FILES, when the hub had them. */
  readonly hub: ReadonlyMap<string, Buffer>;
  readonly deploy: ReadonlyMap<DeployFileName, Buffer>;
}

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The deploy directory's files a backup holds for `env`: everything but the manifest brics-env writes. */
export function backedUpDeployFiles(env: Environment) {
  return deployFilesFor(env).filter((f) => f.kind !== "manifest");
}

/** The archive's entries, the manifest first. */
export function backupEntries(contents: BackupContents, meta: { created: Date; bricsEnv: string }): Array<{ path: string; data: Buffer }> {
  const files = [
    ...[...contents.hub].map(([name, data]) => ({ path: `hub/${name}`, data })),
    ...[...contents.deploy].map(([name, data]) => ({ path: `deploy/${name}`, data })),
  ];
  const manifest: BackupManifest = {
    kind: BACKUP_KIND,
    format: BACKUP_FORMAT,
    environment: contents.environment,
    created: meta.created.toISOString(),
    bricsEnv: meta.bricsEnv,
    jupyterhub: contents.jupyterhub,
    files: files.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256(f.data) })),
  };
  return [{ path: BACKUP_MANIFEST, data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) }, ...files];
}

export type BackupReading = { ok: true; manifest: BackupManifest; contents: BackupContents } | { ok: false; problems: string[] };

function parseManifest(data: Buffer | undefined, problems: string[]): BackupManifest | undefined {
  if (data === undefined) {
    problems.push(`it has no ${BACKUP_MANIFEST}: not a brics-env backup`);
    return undefined;
  }
  let m: unknown;
  try {
    m = JSON.parse(data.toString("utf8"));
  } catch {
    problems.push(`${BACKUP_MANIFEST} is not JSON`);
    return undefined;
  }
  const o = m as Partial<BackupManifest> | null;
  if (o === null || typeof o !== "object" || o.kind !== BACKUP_KIND) {
    problems.push(`${BACKUP_MANIFEST} is not a brics-env backup manifest`);
    return undefined;
  }
  if (typeof o.format !== "number" || o.format > BACKUP_FORMAT || o.format < 1) {
    problems.push(
      `it is in format ${String(o.format)}, which this brics-env (format ${BACKUP_FORMAT}) cannot read` +
        `${typeof o.format === "number" && o.format > BACKUP_FORMAT ? ": restore it with the newer brics-env that wrote it" : ""}`,
    );
    return undefined;
  }
  const files = Array.isArray(o.files) ? o.files : undefined;
  if (files === undefined || !files.every((f) => typeof f?.path === "string" && typeof f.sha256 === "string" && typeof f.size === "number")) {
    problems.push(`${BACKUP_MANIFEST} does not list its files with size and sha256`);
    return undefined;
  }
  return o as BackupManifest;
}

/**
 * Checks an archive's entries completely (format, environment, every file's size and checksum,
 * nothing missing, nothing extra, only files a backup of `env` holds) and returns what to
 * restore, or every problem found.
 */
export function readBackup(env: Environment, entries: ReadonlyMap<string, Buffer>): BackupReading {
  const problems: string[] = [];
  const manifest = parseManifest(entries.get(BACKUP_MANIFEST), problems);
  if (manifest === undefined) return { ok: false, problems };
  if (manifest.environment !== env.name) problems.push(`it is a backup of ${manifest.environment}, not of ${env.name}`);
  const listed = new Set(manifest.files.map((f) => f.path));
  for (const f of manifest.files) {
    const data = entries.get(f.path);
    if (data === undefined) problems.push(`${f.path} is listed but not in the archive`);
    else if (data.length !== f.size || sha256(data) !== f.sha256) problems.push(`${f.path} does not match its checksum: the archive is damaged`);
  }
  for (const path of entries.keys()) {
    if (path !== BACKUP_MANIFEST && !listed.has(path)) problems.push(`${path} is in the archive but not in its manifest`);
  }
  const hubNames = new Set<string>([...HUB_STATE_FILES, ...KEPT_HUB_FILES]);
  const deployNames = new Set<string>(backedUpDeployFiles(env).map((f) => f.name));
  const hub = new Map<string, Buffer>();
  const deploy = new Map<DeployFileName, Buffer>();
  for (const f of manifest.files) {
    const data = entries.get(f.path);
    const [dir, name = ""] = f.path.split(/\/(.*)/s);
    if (dir === "hub" && hubNames.has(name)) {
      if (data !== undefined) hub.set(name, data);
    } else if (dir === "deploy" && deployNames.has(name)) {
      if (data !== undefined) deploy.set(name as DeployFileName, data);
    } else if (dir === "deploy") {
      problems.push(`${f.path} is not a deploy-directory file of ${env.name}`);
    } else {
      problems.push(`${f.path} is not a file a backup holds`);
    }
  }
  for (const name of HUB_STATE_FILES) if (!listed.has(`hub/${name}`)) problems.push(`hub/${name} is missing`);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, manifest, contents: { environment: env.name, jupyterhub: manifest.jupyterhub ?? null, hub, deploy } };
}

/** The default archive name: `<env>-<UTC time>[-<why>].tar.gz`, sortable, no characters a shell minds. */
export function backupFileName(env: EnvName, at: Date, why?: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${env}-${stamp}${why === undefined ? "" : `-${why.replace(/[^A-Za-z0-9._-]+/g, "-")}`}.tar.gz`;
}
