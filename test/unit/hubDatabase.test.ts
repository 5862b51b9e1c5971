import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { recordPlayedImage } from "../../src/commands/hubPrepare.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { compareReleases, decideDatabaseStep, formatVersionRecord, parseVersionRecord, recordWithImage, VERSION_RECORD_FILE } from "../../src/plan/hubDatabase.js";
import { imageRef, volumeName } from "../../src/plan/names.js";

const record = (jupyterhub: string, imageId = "img-old") => ({ jupyterhub, imageId });

describe("recordWithImage", () => {
  const asked = (recorded: string, imageJupyterhub: string, recordedImage = "") => {
    const facts = { databaseExists: true, record: record(recorded, recordedImage), image: { id: "img-new", jupyterhub: imageJupyterhub } };
    return recordWithImage(facts, decideDatabaseStep(facts));
  };

  it("pairs the recorded version with the image once the image was found to have it", () => {
    assert.deepEqual(asked("5.2.1", "5.2.1"), { jupyterhub: "5.2.1", imageId: "img-new" });
    // What it writes reads back the same, so the next decision needs no question to the image.
    const written = parseVersionRecord(formatVersionRecord(asked("5.2.1", "5.2.1")!));
    assert.equal(decideDatabaseStep({ databaseExists: true, record: written, image: { id: "img-new" } }).kind, "none");
  });

  it("writes nothing when the image has another version, or nothing was asked", () => {
    assert.equal(asked("5.2.1", "5.4.2"), undefined, "an upgrade records the version after upgrade-db, not before");
    assert.equal(asked("5.4.2", "5.2.1"), undefined, "a refused downgrade changes nothing");
    const unasked = { databaseExists: true, record: record("5.2.1", "img-new"), image: { id: "img-new" } };
    assert.equal(recordWithImage(unasked, decideDatabaseStep(unasked)), undefined, "the record already names the image");
  });
});

describe("decideDatabaseStep", () => {
  it("does nothing without a database or without a record", () => {
    assert.equal(decideDatabaseStep({ databaseExists: false, record: record("5.2.1"), image: { id: "x" } }).kind, "none");
    assert.equal(decideDatabaseStep({ databaseExists: true, record: undefined, image: { id: "x" } }).kind, "none");
  });

  it("does not ask an image that last opened the database", () => {
    const step = decideDatabaseStep({ databaseExists: true, record: record("5.2.1", "img-a"), image: { id: "img-a" } });
    assert.equal(step.kind, "none");
  });

  it("asks another image for its version, then compares", () => {
    const facts = { databaseExists: true, record: record("5.2.1", "img-a") };
    assert.equal(decideDatabaseStep({ ...facts, image: { id: "img-b" } }).kind, "ask-image");
    // A record without an image id (restored, or written by set-version) asks too.
    assert.equal(decideDatabaseStep({ ...facts, record: record("5.2.1", ""), image: { id: "" } }).kind, "ask-image");
    assert.equal(decideDatabaseStep({ ...facts, image: { id: "img-b", jupyterhub: "5.2.1" } }).kind, "none");
    assert.deepEqual(decideDatabaseStep({ ...facts, image: { id: "img-b", jupyterhub: "5.4.2" } }), { kind: "upgrade", from: "5.2.1", to: "5.4.2" });
    assert.deepEqual(decideDatabaseStep({ ...facts, record: record("5.3.0b1"), image: { id: "img-b", jupyterhub: "5.3.0" } }), {
      kind: "upgrade",
      from: "5.3.0b1",
      to: "5.3.0",
    });
  });

  it("refuses an image older than the database, saying what to do", () => {
    const step = decideDatabaseStep({ databaseExists: true, record: record("5.4.2"), image: { id: "img-b", jupyterhub: "5.2.1" } });
    assert.equal(step.kind, "refuse");
    assert.match(step.kind === "refuse" ? step.message : "", /written by JupyterHub 5\.4\.2 and the image has the older 5\.2\.1.*never downgrades.*brics-env restore/);
  });
});

describe("version records and releases", () => {
  it("parses what the start script writes and nothing else", () => {
    assert.deepEqual(parseVersionRecord('{"jupyterhub": "5.2.1", "image_id": "abc"}\n'), { jupyterhub: "5.2.1", imageId: "abc" });
    assert.deepEqual(parseVersionRecord('{"jupyterhub": "5.2.1"}'), { jupyterhub: "5.2.1", imageId: "" });
    assert.equal(parseVersionRecord(undefined), undefined);
    assert.equal(parseVersionRecord("{nope"), undefined);
    assert.equal(parseVersionRecord('{"jupyterhub": 5}'), undefined);
  });

  it("compares releases numerically", () => {
    assert.ok(compareReleases("5.10.0", "5.9.9") > 0);
    assert.ok(compareReleases("4.1", "4.1.0") === 0);
    assert.ok(compareReleases("5.2.1", "5.4.2") < 0);
  });
});

describe("a failed upgrade", () => {
  it("names the backup taken before it and how to bring it back", async () => {
    const { upgradeFailure } = await import("../../src/commands/hubPrepare.js");
    const { getEnvironment } = await import("../../src/plan/environments.js");
    const message = upgradeFailure(
      getEnvironment("prod"),
      "jupyterhub upgrade-db with localhost/brics_jupyterhub:latest failed (exit 1):\n    alembic.util.exc.CommandError: Can't locate revision",
      "/srv/brics/deploy/backups/prod-20261126T031500Z-before-upgrade-5.2.1-to-5.4.2.tar.gz",
      "/srv/brics/deploy",
      "5.2.1",
    );
    assert.match(message, /^jupyterhub upgrade-db with .* failed \(exit 1\):\n {4}alembic/);
    assert.match(
      message,
      /the backup taken before is \/srv\/brics\/deploy\/backups\/prod-20261126T031500Z-before-upgrade-5\.2\.1-to-5\.4\.2\.tar\.gz: 'brics-env restore prod \/srv\/brics\/deploy\/backups\/prod-20261126T031500Z-before-upgrade-5\.2\.1-to-5\.4\.2\.tar\.gz \/srv\/brics\/deploy --overwrite' brings it back \(then up with an image of JupyterHub 5\.2\.1\)$/,
    );
  });
});

describe("recordPlayedImage", () => {
  const env = getEnvironment("dev_dummyauth");
  const image = imageRef("brics_jupyterhub", env.stage);
  const volumeWith = (text: string | undefined) => {
    const mountpoint = mkdtempSync(join(tmpdir(), "brics-env-record-"));
    const srv = join(mountpoint, "srv", "jupyterhub");
    mkdirSync(srv, { recursive: true });
    if (text !== undefined) writeFileSync(join(srv, VERSION_RECORD_FILE), text);
    return { mountpoints: new Map([[volumeName("jupyterhub_root", env.name), mountpoint]]), file: join(srv, VERSION_RECORD_FILE), mountpoint };
  };
  const images = (id: string) => new Map([[image, { id, labels: {} }]]);

  it("puts the played image's id beside the version the hub recorded at its start", async () => {
    const v = volumeWith(formatVersionRecord({ jupyterhub: "5.3.0", imageId: "" }));
    await recordPlayedImage(env, v.mountpoints, images("sha-played"));
    const written = parseVersionRecord(readFileSync(v.file, "utf8"));
    assert.deepEqual(written, { jupyterhub: "5.3.0", imageId: "sha-played" });
    // The next up's decision needs no question to the image.
    assert.equal(decideDatabaseStep({ databaseExists: true, record: written, image: { id: "sha-played" } }).kind, "none");
    rmSync(v.mountpoint, { recursive: true, force: true });
  });

  it("leaves a record that names the image already, and writes none where the hub wrote none", async () => {
    const same = formatVersionRecord({ jupyterhub: "5.3.0", imageId: "sha-played" });
    const v = volumeWith(same);
    const before = statSync(v.file).mtimeMs;
    await recordPlayedImage(env, v.mountpoints, images("sha-played"));
    assert.equal(readFileSync(v.file, "utf8"), same);
    assert.equal(statSync(v.file).mtimeMs, before);
    const none = volumeWith(undefined);
    await recordPlayedImage(env, none.mountpoints, images("sha-played"));
    assert.equal(existsSync(none.file), false);
    for (const m of [v.mountpoint, none.mountpoint]) rmSync(m, { recursive: true, force: true });
  });
});
