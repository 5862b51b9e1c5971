import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BASES,
  bootstrapKey,
  importArgs,
  mmdebstrapArgs,
  parseBaseKinds,
  selectBases,
  sourcesForSuite,
  type BaseKind,
} from "../../src/plan/bootstrapBases.js";

const getBase = (kind: BaseKind) => BASES.find((b) => b.kind === kind)!;

const SOURCES = `Types: deb
# a comment
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
`;

test("sourcesForSuite keeps the first stanza's mirror and key, with the suite replaced", () => {
  const out = sourcesForSuite(SOURCES, "trixie");
  assert.equal(
    out,
    "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
  );
});

test("sourcesForSuite refuses a file without a deb822 stanza", () => {
  assert.throws(() => sourcesForSuite("deb http://mirror.invalid/debian bookworm main\n", "trixie"), /deb822/);
});

test("bootstrapKey changes with packages, files and sources, not with package order", () => {
  const hub = getBase("jupyterhub");
  const key = bootstrapKey(hub, [], "S");
  assert.equal(bootstrapKey({ ...hub, packages: [...hub.packages].reverse() }, [], "S"), key);
  assert.notEqual(bootstrapKey({ ...hub, packages: [...hub.packages, "vim"] }, [], "S"), key);
  assert.notEqual(bootstrapKey(hub, [], "T"), key);
  const slurm = getBase("slurm");
  assert.notEqual(bootstrapKey(slurm, ["a", "b"], "S"), bootstrapKey(slurm, ["a", "c"], "S"));
});

test("mmdebstrapArgs uploads the base's files and ends with suite, target and stdin sources", () => {
  const args = mmdebstrapArgs(getBase("slurm"), "/tmp/x.tar", "/repo");
  assert.ok(args.includes("--customize-hook=upload /repo/bases/slurm/startup.sh /etc/startup.sh"));
  assert.deepEqual(args.slice(-3), ["trixie", "/tmp/x.tar", "-"]);
  assert.ok(args[2]?.startsWith("--include=") && args[2].includes("slurm-wlm"));
});

test("every base names the variable that selects it and an image under localhost/", () => {
  for (const b of BASES) {
    assert.match(b.image, /^localhost\/brics_(jupyterhub|slurm)_base:debian-/);
    assert.match(b.envVar, /^BRICS_ENV_(JUPYTERHUB|SLURM)_BASE_IMAGE$/);
  }
});

test("podman import gets the base's settings and its key as a label, then the tar and the image", () => {
  const hub = getBase("jupyterhub");
  const args = importArgs(hub, "k123", "/tmp/x.tar");
  assert.deepEqual(args.slice(0, 3), ["import", "--change", "ENV LANG=C.UTF-8"]);
  assert.deepEqual(args.slice(-4), ["--change", "LABEL io.github.brics-env.bootstrap-key=k123", "/tmp/x.tar", "localhost/brics_jupyterhub_base:debian-trixie"]);
  assert.equal(args.filter((a) => a === "--change").length, hub.changes.length + 1);
});

test("--only picks bases by kind; none given means all; an unknown kind is named", () => {
  assert.deepEqual(parseBaseKinds(" slurm, ,jupyterhub"), ["slurm", "jupyterhub"]);
  assert.throws(() => parseBaseKinds("slurm,hub"), /--only: unknown base 'hub'; expected jupyterhub or slurm/);
  assert.deepEqual(selectBases(["slurm"]).map((b) => b.kind), ["slurm"]);
  assert.deepEqual(selectBases([]).map((b) => b.kind), BASES.map((b) => b.kind));
  assert.deepEqual(selectBases().map((b) => b.kind), ["jupyterhub", "slurm"]);
});
