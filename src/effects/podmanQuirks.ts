/**
 * Every podman version difference brics-env works around, in one table, and the rewrite of a
 * played manifest that old podman needs. Kept apart from podman.ts only so it can be unit-tested
 * without podman; nothing else should consult versions.
 *
 * Verified on podman 4.3.1 (Debian 12):
 * - `kube play` segfaults on a `secret:` volume without `optional` (the manifest always sets it);
 * - Secret `data` is mounted still base64-encoded, `stringData` is ignored, and the Secret is a
 *   named volume filled once, so a replay keeps stale contents (fixed in 4.4, containers/podman#16625);
 * - `subPath` is ignored for PVC and Secret volumes: the whole volume is mounted (added in 4.4, #16803);
 * - a PersistentVolumeClaim document naming an existing volume fails the play (#16348, fixed in 4.4).
 * On such versions, kube play gets a rewritten copy of combined.yaml: Secret documents are written
 * to files and mounted with hostPath, each subPath mount becomes a hostPath mount of the path inside
 * the volume, and PVC documents for existing volumes are dropped. combined.yaml itself stays plain
 * Kubernetes.
 */

export interface PodmanVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly raw: string;
}

export function parseVersion(raw: string): PodmanVersion {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(raw.trim());
  if (m === null) throw new Error(`cannot understand podman version '${raw}'`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), raw: raw.trim() };
}

export function atLeast(v: PodmanVersion, major: number, minor: number, patch = 0): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

export interface Quirks {
  /** `kube play --publish` exists (4.4); before, ports are published through hostPort in the manifest. */
  readonly kubePlayPublish: boolean;
  /** `kube down --force` exists (4.4). */
  readonly kubeDownForce: boolean;
  /** `kube down --force` really removes the Pod's volumes (4.6, #18797). */
  readonly kubeDownForceRemovesVolumes: boolean;
  /** `kube down` removes the manifest's Secrets (4.5, #17071). */
  readonly kubeDownRemovesSecrets: boolean;
  /** Secret volumes are decoded, honour stringData/items/subPath and are refreshed on replay (4.4). */
  readonly secretVolumesWork: boolean;
  /** volumeMounts[].subPath is honoured for PVC volumes (4.4). */
  readonly pvcSubPath: boolean;
  /** A PVC document naming an existing volume reuses it instead of failing (4.4, #16348). */
  readonly pvcReuse: boolean;
  /** `--configmap` reads every document of the file, not just the first (4.6, #18537). */
  readonly configmapMultiDoc: boolean;
  /** `defaultMode` on Secret/ConfigMap volumes is honoured (4.8). */
  readonly defaultMode: boolean;
  /** `kube play --wait` (4.5). */
  readonly kubePlayWait: boolean;
  /** `podman volume import` works from the remote client (5.6); before, run it in the VM. */
  readonly remoteVolumeImport: boolean;
}

export function quirksFor(v: PodmanVersion): Quirks {
  return {
    kubePlayPublish: atLeast(v, 4, 4),
    kubeDownForce: atLeast(v, 4, 4),
    kubeDownForceRemovesVolumes: atLeast(v, 4, 6),
    kubeDownRemovesSecrets: atLeast(v, 4, 5),
    secretVolumesWork: atLeast(v, 4, 4),
    pvcSubPath: atLeast(v, 4, 4),
    pvcReuse: atLeast(v, 4, 4),
    configmapMultiDoc: atLeast(v, 4, 6),
    defaultMode: atLeast(v, 4, 8),
    kubePlayWait: atLeast(v, 4, 5),
    remoteVolumeImport: atLeast(v, 5, 6),
  };
}

/** Human-readable lines saying which workarounds apply, for `brics-env doctor`. */
export function describeQuirks(q: Quirks, remote: boolean): string[] {
  const lines: string[] = [];
  const say = (ok: boolean, good: string, workaround: string) => lines.push(ok ? `ok: ${good}` : `workaround: ${workaround}`);
  say(q.kubePlayPublish, "kube play --publish available", "no kube play --publish; ports are published through hostPort in the manifest");
  say(q.kubeDownForce && q.kubeDownForceRemovesVolumes && q.kubeDownRemovesSecrets,
    "kube down --force removes volumes and Secrets",
    "kube down leaves volumes/Secrets; `brics-env down --force` removes them by name");
  say(q.secretVolumesWork && q.pvcSubPath,
    "Secret volumes and subPath mounts work",
    "Secret volumes are broken and subPath is ignored; kube play gets a copy of combined.yaml using hostPath mounts");
  say(q.pvcReuse, "existing volumes are reused on replay", "PVC documents for existing volumes are dropped before kube play");
  say(q.configmapMultiDoc, "--configmap reads every document", "--configmap reads only the first document; deploy-configmap.yaml must hold one document");
  say(q.defaultMode, "defaultMode honoured", "defaultMode ignored; containers fix key permissions at start");
  if (remote) {
    say(q.remoteVolumeImport, "volume import works remotely", "volume import runs inside the VM via `podman machine ssh`");
  }
  return lines;
}

// Minimal structural types for the parts of Kubernetes objects the rewrite touches.
type Obj = Record<string, unknown>;

export interface AdaptContext {
  readonly quirks: Quirks;
  /** Host directory where Secret contents may be written for hostPath mounts. */
  readonly secretDir: string;
  /** Mount point of an existing named volume on the podman host, or undefined if it does not exist. */
  readonly volumeMountpoint: (name: string) => string | undefined;
  /** Whether a path exists on the podman host (to choose a hostPath type). */
  readonly pathExists: (path: string) => boolean;
}

export interface FileToWrite {
  readonly path: string;
  readonly content: Buffer;
  readonly mode: number;
}

export interface AdaptedManifest {
  readonly docs: Obj[];
  /** Files the rewritten manifest mounts; the caller writes them before kube play. */
  readonly files: FileToWrite[];
  /** Secret names whose documents were replaced by files (none left for podman to create). */
  readonly replacedSecrets: string[];
  /** PVC documents dropped because their volume exists. */
  readonly droppedClaims: string[];
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function joinPath(a: string, b: string): string {
  return `${a.replace(/\/+$/, "")}/${b.replace(/^\/+/, "")}`;
}

/** Rewrites the manifest's documents so this podman version plays them as Kubernetes would. */
export function adaptManifest(input: readonly unknown[], ctx: AdaptContext): AdaptedManifest {
  const docs = structuredClone(input).filter(isObj) as Obj[];
  const files: FileToWrite[] = [];
  const replacedSecrets: string[] = [];
  const droppedClaims: string[] = [];
  const secrets = new Map<string, Map<string, Buffer>>();
  const { quirks } = ctx;

  const kept: Obj[] = [];
  for (const doc of docs) {
    const name = isObj(doc["metadata"]) ? String(doc["metadata"]["name"] ?? "") : "";
    if (doc["kind"] === "Secret" && !quirks.secretVolumesWork) {
      const data = new Map<string, Buffer>();
      if (isObj(doc["data"])) for (const [k, v] of Object.entries(doc["data"])) data.set(k, Buffer.from(String(v), "base64"));
      if (isObj(doc["stringData"])) for (const [k, v] of Object.entries(doc["stringData"])) data.set(k, Buffer.from(String(v), "utf8"));
      secrets.set(name, data);
      replacedSecrets.push(name);
      continue;
    }
    if (doc["kind"] === "PersistentVolumeClaim" && !quirks.pvcReuse && ctx.volumeMountpoint(name) !== undefined) {
      droppedClaims.push(name);
      continue;
    }
    kept.push(doc);
  }

  for (const doc of kept) {
    if (doc["kind"] !== "Pod" || !isObj(doc["spec"])) continue;
    const spec = doc["spec"];
    const volumes = (Array.isArray(spec["volumes"]) ? spec["volumes"] : []).filter(isObj) as Obj[];
    const byName = new Map(volumes.map((v) => [String(v["name"]), v]));
    const added: Obj[] = [];
    const usedNames = new Set(byName.keys());
    const freshName = (base: string) => {
      let i = 0;
      let n = base;
      while (usedNames.has(n)) n = `${base}-${++i}`;
      usedNames.add(n);
      return n;
    };
    const secretDirFor = (volName: string, src: Obj): string | undefined => {
      const secretName = String(src["secretName"] ?? "");
      const data = secrets.get(secretName);
      if (data === undefined) return undefined;
      const dir = joinPath(ctx.secretDir, `${secretName}--${volName}`);
      const defaultMode = typeof src["defaultMode"] === "number" ? src["defaultMode"] : 0o644;
      const items = (Array.isArray(src["items"]) ? src["items"] : []).filter(isObj) as Obj[];
      const entries: Array<[string, string, number]> =
        items.length > 0
          ? items.map((it) => [String(it["key"]), String(it["path"]), typeof it["mode"] === "number" ? it["mode"] : defaultMode])
          : [...data.keys()].map((k) => [k, k, defaultMode]);
      for (const [key, path, mode] of entries) {
        const content = data.get(key);
        if (content === undefined) throw new Error(`Secret ${secretName} has no key '${key}'`);
        files.push({ path: joinPath(dir, path), content, mode });
      }
      return dir;
    };

    const secretVolumeDirs = new Map<string, string>();
    for (const v of volumes) {
      if (isObj(v["secret"]) && !quirks.secretVolumesWork) {
        const dir = secretDirFor(String(v["name"]), v["secret"]);
        if (dir !== undefined) {
          secretVolumeDirs.set(String(v["name"]), dir);
          delete v["secret"];
          v["hostPath"] = { path: dir, type: "Directory" };
        }
      }
    }

    const containers = [
      ...(Array.isArray(spec["containers"]) ? spec["containers"] : []),
      ...(Array.isArray(spec["initContainers"]) ? spec["initContainers"] : []),
    ].filter(isObj) as Obj[];
    for (const c of containers) {
      const mounts = (Array.isArray(c["volumeMounts"]) ? c["volumeMounts"] : []).filter(isObj) as Obj[];
      for (const m of mounts) {
        const subPath = typeof m["subPath"] === "string" && m["subPath"] !== "" ? m["subPath"] : undefined;
        if (subPath === undefined) continue;
        const vol = byName.get(String(m["name"]));
        if (vol === undefined) continue;
        let hostPath: Obj | undefined;
        const secretDir = secretVolumeDirs.get(String(m["name"]));
        if (secretDir !== undefined) {
          hostPath = { path: joinPath(secretDir, subPath), type: "File" };
        } else if (isObj(vol["persistentVolumeClaim"]) && !quirks.pvcSubPath) {
          const claim = String(vol["persistentVolumeClaim"]["claimName"] ?? "");
          const mountpoint = ctx.volumeMountpoint(claim);
          if (mountpoint === undefined) {
            throw new Error(
              `volume ${claim} must exist before kube play on podman < 4.4 (subPath mounts are emulated); run 'brics-env resources' first`,
            );
          }
          const path = joinPath(mountpoint, subPath);
          hostPath = ctx.pathExists(path) ? { path } : { path, type: "DirectoryOrCreate" };
        }
        if (hostPath === undefined) continue;
        const newName = freshName(`${String(m["name"])}-${subPath.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "").toLowerCase()}`);
        added.push({ name: newName, hostPath });
        m["name"] = newName;
        delete m["subPath"];
      }
    }
    spec["volumes"] = [...volumes, ...added];
  }
  return { docs: kept, files, replacedSecrets, droppedClaims };
}

/** Whether adaptManifest would change anything on this version. */
export function needsAdaptation(q: Quirks): boolean {
  return !q.secretVolumesWork || !q.pvcSubPath || !q.pvcReuse;
}
