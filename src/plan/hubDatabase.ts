/**
 * Whether the hub's database must be upgraded before a hub image starts on it. The hub image's
 * start script records which JupyterHub wrote the database (brics_hub/hub_state.py
 * record-at-start: {"jupyterhub": version, "image_id": id} in /srv/jupyterhub); `up` compares that
 * with the image it is about to start. Pure: the caller reads the record and asks the image.
 */

/** The record's file name in /srv/jupyterhub (hub_state.py VERSION_FILE). */
export const VERSION_RECORD_FILE = "jupyterhub-db-version.json";
export const DATABASE_FILE = "jupyterhub.sqlite";

export interface VersionRecord {
  readonly jupyterhub: string;
  readonly imageId: string;
}

/** The record's JSON as the start script writes it; anything else reads as no record. */
export function parseVersionRecord(text: string | undefined): VersionRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const o = JSON.parse(text) as { jupyterhub?: unknown; image_id?: unknown };
    if (typeof o.jupyterhub !== "string" || o.jupyterhub === "") return undefined;
    return { jupyterhub: o.jupyterhub, imageId: typeof o.image_id === "string" ? o.image_id : "" };
  } catch {
    return undefined;
  }
}

/** The record as hub_state.py writes it (write_version_record). */
export function formatVersionRecord(record: VersionRecord): string {
  return `${JSON.stringify({ jupyterhub: record.jupyterhub, image_id: record.imageId })}\n`;
}

/**
 * The record to write once the image was asked and has the recorded version: the same version,
 * now beside the image's id, so the next `up` with this image need not ask it. Undefined when
 * there is nothing to add.
 */
export function recordWithImage(facts: DatabaseFacts, step: DatabaseStep): VersionRecord | undefined {
  const record = facts.record;
  if (step.kind !== "none" || record === undefined || facts.image.id === "" || record.imageId === facts.image.id) return undefined;
  if (facts.image.jupyterhub !== record.jupyterhub) return undefined;
  return { jupyterhub: record.jupyterhub, imageId: facts.image.id };
}

export type DatabaseStep =
  /** Nothing to do; `why` for the curious. */
  | { readonly kind: "none"; readonly why: string }
  /** The image's version is needed to decide (the record is from another image). */
  | { readonly kind: "ask-image" }
  | { readonly kind: "upgrade"; readonly from: string; readonly to: string }
  /** The image is older than the database: JupyterHub cannot downgrade a schema. */
  | { readonly kind: "refuse"; readonly message: string };

export interface DatabaseFacts {
  readonly databaseExists: boolean;
  readonly record: VersionRecord | undefined;
  readonly image: { readonly id: string; readonly jupyterhub?: string };
}

/** Numeric release parts of a version (`5.4.2`, `5.3.0b1` -> [5, 3, 0]). */
function release(version: string): number[] {
  return (/^(\d+(?:\.\d+)*)/.exec(version)?.[1] ?? "").split(".").filter((p) => p !== "").map(Number);
}

/** <0, 0, >0 as a is older, the same release, newer than b. */
export function compareReleases(a: string, b: string): number {
  const x = release(a);
  const y = release(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function decideDatabaseStep(facts: DatabaseFacts): DatabaseStep {
  if (!facts.databaseExists) return { kind: "none", why: "no database yet: the hub creates it" };
  const record = facts.record;
  // A database from before the record existed: the start script records the version that opens it
  // (JupyterHub itself refuses a schema it does not know, with its own message).
  if (record === undefined) return { kind: "none", why: "the database has no version record yet; the hub records it at start" };
  if (record.imageId !== "" && record.imageId === facts.image.id) return { kind: "none", why: `the database was last opened by this image (JupyterHub ${record.jupyterhub})` };
  const to = facts.image.jupyterhub;
  if (to === undefined) return { kind: "ask-image" };
  if (to === record.jupyterhub) return { kind: "none", why: `the image has the JupyterHub that wrote the database (${to})` };
  if (compareReleases(to, record.jupyterhub) < 0) {
    return {
      kind: "refuse",
      message:
        `the database was written by JupyterHub ${record.jupyterhub} and the image has the older ${to}, which cannot open it ` +
        `(JupyterHub upgrades a database but never downgrades one): build the image with JupyterHub ${record.jupyterhub} or later, ` +
        `or restore the backup taken before the upgrade (brics-env restore)`,
    };
  }
  return { kind: "upgrade", from: record.jupyterhub, to };
}
