/**
 * Every podman version difference brics-env works around, in one table, and the rewrite of a
 * played manifest that old podman needs. Pure: effects/podman.ts asks podman for its version and
 * acts on the Quirks decided here; nothing else consults versions.
 *
 * Verified on podman 4.3.1 (Debian 12):
 * - `kube play` segfaults on a `secret:` volume without `optional` (the manifest always sets it);
 * - Secret `data` is mounted still base64-encoded, `stringData` is ignored, and the Secret is a
 *   named volume filled once, so a replay keeps stale contents (fixed in 4.4, containers/podman#16625);
 * - `subPath` is ignored for PVC and Secret volumes: the whole volume is mounted (added in 4.4, #16803).
 * On such versions, kube play gets a rewritten copy of combined.yaml: Secrets are written to files
 * and mounted with hostPath, and each subPath mount becomes a hostPath mount of the path inside the
 * volume. combined.yaml itself stays plain Kubernetes. (Before 4.4 a PersistentVolumeClaim document
 * naming an existing volume also fails the play, #16348; combined.yaml names claims only in the
 * Pod's volumes and holds no PVC documents, so that needs nothing.)
 */
import type { ManifestObject, Pod, Secret, Volume, VolumeMount } from "./manifest.js";

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

function atLeast(v: PodmanVersion, major: number, minor: number, patch = 0): boolean {
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
  /** `--configmap` reads every document of the file, not just the first (4.6, #18537). */
  readonly configmapMultiDoc: boolean;
  /** `defaultMode` on Secret/ConfigMap volumes is honoured (4.8). */
  readonly defaultMode: boolean;
  /** `podman volume import` works from the remote client (5.6); before, run it in the VM. */
  readonly remoteVolumeImport: boolean;
  /**
   * Quadlet turns `.kube` files in /etc/containers/systemd/ into services running `kube play` (4.4);
   * before, `brics-env service` writes a plain unit calling `brics-env up`/`down`.
   */
  readonly quadletKube: boolean;
}

export function quirksFor(v: PodmanVersion): Quirks {
  return {
    kubePlayPublish: atLeast(v, 4, 4),
    kubeDownForce: atLeast(v, 4, 4),
    kubeDownForceRemovesVolumes: atLeast(v, 4, 6),
    kubeDownRemovesSecrets: atLeast(v, 4, 5),
    secretVolumesWork: atLeast(v, 4, 4),
    pvcSubPath: atLeast(v, 4, 4),
    configmapMultiDoc: atLeast(v, 4, 6),
    defaultMode: atLeast(v, 4, 8),
    remoteVolumeImport: atLeast(v, 5, 6),
    quadletKube: atLeast(v, 4, 4),
  };
}

/** Whether kube play creates the manifest's Secrets (elsewhere the adapted copy mounts files in their place). */
export function playsSecrets(q: Quirks): boolean {
  return q.secretVolumesWork;
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
  say(q.configmapMultiDoc, "--configmap reads every document", "--configmap reads only the first document; deploy-configmap.yaml must hold one document");
  say(q.defaultMode, "defaultMode honoured", "defaultMode ignored; containers fix key permissions at start");
  say(q.quadletKube, "Quadlet .kube units (brics-env service)", "no Quadlet; brics-env service writes a unit that runs brics-env up/down");
  if (remote) {
    say(q.remoteVolumeImport, "volume import works remotely", "volume import runs inside the VM via `podman machine ssh`");
  }
  return lines;
}

/** Whether adaptManifest would change anything on this version. */
export function needsAdaptation(q: Quirks): boolean {
  return !q.secretVolumesWork || !q.pvcSubPath;
}

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
  readonly objects: ManifestObject[];
  /** Files the rewritten manifest mounts; the caller writes them before kube play. */
  readonly files: FileToWrite[];
  /** Secret names whose objects were replaced by files (none left for podman to create). */
  readonly replacedSecrets: string[];
}

function joinPath(a: string, b: string): string {
  return `${a.replace(/\/+$/, "")}/${b.replace(/^\/+/, "")}`;
}

/** A DNS-1123 label for a volume standing for `subPath` of volume `name`. */
function subPathVolumeName(name: string, subPath: string): string {
  return `${name}-${subPath.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "").toLowerCase()}`;
}

/**
 * Rewrites the manifest's objects so this podman version plays them as Kubernetes would. The
 * input is left as it is; on a version that needs nothing, the same objects come back.
 */
export function adaptManifest(input: readonly ManifestObject[], ctx: AdaptContext): AdaptedManifest {
  const { quirks } = ctx;
  if (!needsAdaptation(quirks)) return { objects: [...input], files: [], replacedSecrets: [] };
  const files: FileToWrite[] = [];
  const secrets = new Map<string, Secret>();
  const objects: ManifestObject[] = [];
  for (const o of input) {
    if (o.kind === "Secret" && !playsSecrets(quirks)) secrets.set(o.metadata.name, o);
    else objects.push(o.kind === "Pod" ? structuredClone(o) : o);
  }

  /** Writes a Secret volume's keys as files (as Kubernetes would project them); returns their directory. */
  const secretFiles = (volume: Volume, src: NonNullable<Volume["secret"]>): string | undefined => {
    const secret = secrets.get(src.secretName);
    if (secret === undefined) return undefined;
    const dir = joinPath(ctx.secretDir, `${src.secretName}--${volume.name}`);
    const mode = src.defaultMode ?? 0o644;
    for (const [key, value] of Object.entries(secret.data)) {
      files.push({ path: joinPath(dir, key), content: Buffer.from(value, "base64"), mode });
    }
    return dir;
  };

  for (const pod of objects.filter((o): o is Pod => o.kind === "Pod")) {
    const spec = pod.spec;
    const byName = new Map(spec.volumes.map((v) => [v.name, v]));
    const usedNames = new Set(byName.keys());
    const added: Volume[] = [];
    const secretDirs = new Map<string, string>();
    for (const v of spec.volumes) {
      if (v.secret === undefined || quirks.secretVolumesWork) continue;
      const dir = secretFiles(v, v.secret);
      if (dir === undefined) continue;
      secretDirs.set(v.name, dir);
      delete v.secret;
      v.hostPath = { path: dir, type: "Directory" };
    }
    const hostPathFor = (m: VolumeMount & { subPath: string }): Volume["hostPath"] => {
      const secretDir = secretDirs.get(m.name);
      if (secretDir !== undefined) return { path: joinPath(secretDir, m.subPath), type: "File" };
      const claim = byName.get(m.name)?.persistentVolumeClaim?.claimName;
      if (claim === undefined || quirks.pvcSubPath) return undefined;
      const mountpoint = ctx.volumeMountpoint(claim);
      if (mountpoint === undefined) {
        throw new Error(`volume ${claim} must exist before kube play on podman < 4.4 (subPath mounts are emulated); run 'brics-env resources' first`);
      }
      const path = joinPath(mountpoint, m.subPath);
      return ctx.pathExists(path) ? { path } : { path, type: "DirectoryOrCreate" };
    };
    for (const c of spec.containers) {
      for (const m of c.volumeMounts) {
        if (m.subPath === undefined || m.subPath === "") continue;
        const hostPath = hostPathFor({ ...m, subPath: m.subPath });
        if (hostPath === undefined) continue;
        let name = subPathVolumeName(m.name, m.subPath);
        for (let i = 1; usedNames.has(name); i++) name = `${subPathVolumeName(m.name, m.subPath)}-${i}`;
        usedNames.add(name);
        added.push({ name, hostPath });
        m.name = name;
        delete m.subPath;
      }
    }
    spec.volumes.push(...added);
  }
  return { objects, files, replacedSecrets: [...secrets.keys()] };
}

/**
 * Every workaround on: Secrets as files and sub-path mounts as host paths. How `up` recreates one
 * container of a running pod with `podman create`, which mounts host paths on every version but a
 * sub-path of a named volume only from podman 5.
 */
export const HOST_PATH_QUIRKS: Quirks = quirksFor(parseVersion("4.3.0"));
