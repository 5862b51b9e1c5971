import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, it } from "node:test";
import { create } from "tar";
import { BACKUP_FORMAT, BACKUP_MANIFEST, backupEntries, backupFileName, readBackup, type BackupContents } from "../../src/plan/backup.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { ArchiveError, readBackupArchive, readTarEntries, tarOf, writeBackupArchive } from "../../src/effects/backupArchive.js";

const ENV = getEnvironment("dev_dummyauth");
const CONTENTS: BackupContents = {
  environment: "dev_dummyauth",
  jupyterhub: "5.2.1",
  hub: new Map([
    ["jupyterhub.sqlite", Buffer.from("SQLite format 3\0 and some pages")],
    ["jupyterhub_cookie_secret", Buffer.alloc(32, 7)],
    ["jupyterhub_crypt_key", Buffer.from("ab".repeat(32) + "\n")],
    ["prometheus-service.token", Buffer.from("scrape\n")],
  ]),
  deploy: new Map([
    ["deploy-configmap.yaml", Buffer.from("apiVersion: v1\nkind: ConfigMap\n")],
    ["ssh_client_key", Buffer.from("-----BEGIN OPENSSH PRIVATE KEY-----\n")],
  ]),
};
const META = { created: new Date("2026-11-26T10:20:30.456Z"), bricsEnv: "0.1.0" };

function entriesOf(contents = CONTENTS): Map<string, Buffer> {
  return new Map(backupEntries(contents, META).map((e) => [e.path, e.data]));
}

describe("backup archive contents", () => {
  it("lists every file with its size and sha256, the format and the environment", () => {
    const entries = backupEntries(CONTENTS, META);
    assert.equal(entries[0]!.path, BACKUP_MANIFEST);
    const manifest = JSON.parse(entries[0]!.data.toString()) as { format: number; environment: string; jupyterhub: string; files: Array<{ path: string; sha256: string }> };
    assert.equal(manifest.format, BACKUP_FORMAT);
    assert.equal(manifest.environment, "dev_dummyauth");
    assert.equal(manifest.jupyterhub, "5.2.1");
    assert.deepEqual(manifest.files.map((f) => f.path), [
      "hub/jupyterhub.sqlite",
      "hub/jupyterhub_cookie_secret",
      "hub/jupyterhub_crypt_key",
      "hub/prometheus-service.token",
      "deploy/deploy-configmap.yaml",
      "deploy/ssh_client_key",
    ]);
    assert.ok(manifest.files.every((f) => /^[0-9a-f]{64}$/.test(f.sha256)));
  });

  it("reads back what it wrote", () => {
    const r = readBackup(ENV, entriesOf());
    assert.ok(r.ok, r.ok ? "" : r.problems.join("; "));
    assert.deepEqual([...r.contents.hub], [...CONTENTS.hub]);
    assert.deepEqual([...r.contents.deploy], [...CONTENTS.deploy]);
    assert.equal(r.contents.jupyterhub, "5.2.1");
  });

  it("refuses a damaged file, naming it", () => {
    const entries = entriesOf();
    const db = Buffer.from(entries.get("hub/jupyterhub.sqlite")!);
    db[3] = db[3]! ^ 1;
    entries.set("hub/jupyterhub.sqlite", db);
    const r = readBackup(ENV, entries);
    assert.ok(!r.ok);
    assert.deepEqual(r.problems, ["hub/jupyterhub.sqlite does not match its checksum: the archive is damaged"]);
  });

  it("refuses a newer format, another environment, missing and extra files", () => {
    const newer = entriesOf();
    const m = JSON.parse(newer.get(BACKUP_MANIFEST)!.toString()) as Record<string, unknown>;
    newer.set(BACKUP_MANIFEST, Buffer.from(JSON.stringify({ ...m, format: BACKUP_FORMAT + 1 })));
    const r1 = readBackup(ENV, newer);
    assert.ok(!r1.ok && /format 2, which this brics-env \(format 1\) cannot read: restore it with the newer brics-env/.test(r1.problems[0]!));

    const r2 = readBackup(getEnvironment("prod"), entriesOf());
    assert.ok(!r2.ok && r2.problems.includes("it is a backup of dev_dummyauth, not of prod"));

    const missing = entriesOf();
    missing.delete("hub/jupyterhub_crypt_key");
    // A kept file may be absent from the hub, never a state file from the archive.
    missing.set("extra.txt", Buffer.from("x"));
    const r3 = readBackup(ENV, missing);
    assert.ok(!r3.ok);
    assert.ok(r3.problems.includes("hub/jupyterhub_crypt_key is listed but not in the archive"));
    assert.ok(r3.problems.includes("extra.txt is in the archive but not in its manifest"));
    const unlisted = new Map(backupEntries({ ...CONTENTS, hub: new Map([...CONTENTS.hub].filter(([n]) => n !== "jupyterhub_cookie_secret")) }, META).map((e) => [e.path, e.data]));
    const r5 = readBackup(ENV, unlisted);
    assert.ok(!r5.ok && r5.problems.includes("hub/jupyterhub_cookie_secret is missing"));

    const r4 = readBackup(ENV, new Map([["something", Buffer.from("x")]]));
    assert.ok(!r4.ok && /no brics-env-backup.json: not a brics-env backup/.test(r4.problems[0]!));
  });

  it("refuses hub files that are not the hub's state or the services' tokens", () => {
    const contents = { ...CONTENTS, hub: new Map([...CONTENTS.hub, ["jupyterhub.log", Buffer.from("x")]]) };
    const r = readBackup(ENV, entriesOf(contents));
    assert.ok(!r.ok && r.problems.includes("hub/jupyterhub.log is not a file a backup holds"));
    const escaping = { ...CONTENTS, hub: new Map([...CONTENTS.hub, ["../../etc/passwd", Buffer.from("x")]]) };
    const r2 = readBackup(ENV, entriesOf(escaping));
    assert.ok(!r2.ok && r2.problems.includes("hub/../../etc/passwd is not a file a backup holds"));
  });

  it("refuses deploy files the environment does not have", () => {
    const contents = { ...CONTENTS, deploy: new Map([...CONTENTS.deploy, ["ssh_known_hosts" as const, Buffer.from("x")]]) };
    const r = readBackup(ENV, entriesOf(contents));
    assert.ok(!r.ok && r.problems.includes("deploy/ssh_known_hosts is not a deploy-directory file of dev_dummyauth"));
  });

  it("names archives by environment and UTC time", () => {
    assert.equal(backupFileName("prod", META.created), "prod-20261126T102030Z.tar.gz");
    assert.equal(backupFileName("prod", META.created, "before-upgrade"), "prod-20261126T102030Z-before-upgrade.tar.gz");
    assert.equal(backupFileName("prod", META.created, "before upgrade 5.2.1/5.4.2"), "prod-20261126T102030Z-before-upgrade-5.2.1-5.4.2.tar.gz");
  });
});

describe("backup archive files", () => {
  it("round-trips through a 0600 tar.gz that GNU-style readers accept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "brics-backup-test-"));
    try {
      const file = join(dir, "b.tar.gz");
      const entries = backupEntries(CONTENTS, META);
      await writeBackupArchive(file, entries, META.created);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const read = await readBackupArchive(file);
      assert.deepEqual([...read.keys()], entries.map((e) => e.path));
      assert.ok(readBackup(ENV, read).ok);
      await assert.rejects(writeBackupArchive(file, entries, META.created), /already exists/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("tarOf pads every file to whole blocks", () => {
    const tar = tarOf([{ path: "a", data: Buffer.from("xyz") }], META.created);
    assert.equal(tar.length, 512 + 512 + 1024);
  });

  it("refuses what is not a tar of plain files", async () => {
    await assert.rejects(readTarEntries(Buffer.from([0x1f, 0x8b, 1, 2, 3])), ArchiveError);
    const dir = mkdtempSync(join(tmpdir(), "brics-backup-test-"));
    try {
      // A directory entry, as a hand-made archive might carry.
      const chunks: Buffer[] = [];
      for await (const c of create({ cwd: tmpdir(), portable: true }, [dir.slice(tmpdir().length + 1)]) as AsyncIterable<Buffer>) chunks.push(c);
      await assert.rejects(readTarEntries(gzipSync(Buffer.concat(chunks))), /is a Directory, not a file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("restore, before it touches anything", () => {
  it("refuses a damaged archive, listing what is wrong, with the deploy directory as it was", async () => {
    const { restoreCommand } = await import("../../src/commands/restore.js");
    const { ReportedFailure } = await import("../../src/commands/common.js");
    const dir = mkdtempSync(join(tmpdir(), "brics-restore-test-"));
    try {
      const entries = backupEntries(CONTENTS, META).map((e) => (e.path === "hub/jupyterhub_crypt_key" ? { ...e, data: Buffer.from("tampered") } : e));
      const file = join(dir, "b.tar.gz");
      await writeBackupArchive(file, entries, META.created);
      const deployDir = join(dir, "deploy");
      const said: string[] = [];
      const out = { say: (l: string) => said.push(l), progress: () => undefined, warn: (l: string) => said.push(l) };
      await assert.rejects(restoreCommand(ENV, file, deployDir, { overwrite: true }, out), ReportedFailure);
      assert.deepEqual(said.slice(1), ["  - hub/jupyterhub_crypt_key does not match its checksum: the archive is damaged"]);
      assert.match(said[0]!, /cannot be restored; nothing was changed:$/);
      assert.equal(existsSync(deployDir), false, "nothing was written");
      await assert.rejects(restoreCommand(ENV, join(dir, "missing.tar.gz"), deployDir, {}, out), /ENOENT/);
      await writeFile(join(dir, "junk.tar.gz"), "not an archive");
      await assert.rejects(restoreCommand(ENV, join(dir, "junk.tar.gz"), deployDir, {}, out), /junk\.tar\.gz cannot be read: .*no brics-env-backup\.json|junk\.tar\.gz cannot be read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
