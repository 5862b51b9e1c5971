/** The effects that drive other real tools: ssh-keygen, git, the file system, podman build/pull. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { readDeployDir, writeFileAtomic, FileExistsError } from "../../src/effects/deployDir.js";
import { findExecutable, run } from "../../src/effects/exec.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { KEY_RSA_PEM } from "../unit/fixtureKeys.js";
import { cloneIsAt, cloneUnlessPresent } from "../../src/effects/git.js";
import { healthUrl, waitForHealth } from "../../src/effects/hubHealth.js";
import { buildImage, ensureImage, imageExists } from "../../src/effects/podman.js";
import { derivePublicKey, ensureKeyPair } from "../../src/effects/sshKeys.js";
import { busyboxMissingReason, makeBusyboxImage, removeImage, uniqueId } from "./helpers.js";
import { watchCmdlines } from "./cmdlines.js";
import { BuildSecret } from "../../src/plan/indexCredentials.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "brics-env-test-tools-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("ssh key pairs", () => {
  test("generates an ed25519 pair, private 0600, and keeps it on re-run", async () => {
    const priv = join(dir, "ssh_client_key");
    const first = await ensureKeyPair(priv, `${priv}.pub`, "test key");
    assert.equal(first.kind, "generated");
    assert.equal((await stat(priv)).mode & 0o777, 0o600);
    const pub = await readFile(`${priv}.pub`, "utf8");
    assert.match(pub, /^ssh-ed25519 \S+ test key\n$/);
    assert.equal((await derivePublicKey(priv)).split(" ").slice(0, 2).join(" "), pub.split(" ").slice(0, 2).join(" "));
    const second = await ensureKeyPair(priv, `${priv}.pub`, "test key");
    assert.equal(second.kind, "kept");
    assert.equal(await readFile(`${priv}.pub`, "utf8"), pub);
  });

  test("refuses a mismatched pair and half a pair", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await ensureKeyPair(a, `${a}.pub`, "a");
    await ensureKeyPair(b, `${b}.pub`, "b");
    await writeFile(`${a}.pub`, await readFile(`${b}.pub`));
    await assert.rejects(ensureKeyPair(a, `${a}.pub`, "a"), /is not the public half/);
    await rm(`${b}.pub`);
    await assert.rejects(ensureKeyPair(b, `${b}.pub`, "b"), /exists but .* does not/);
  });
});

describe("a key that appears while a pair is made", () => {
  test("is kept, and the new pair is not used (link, not rename)", async () => {
    const real = await findExecutable("ssh-keygen");
    assert.ok(real, "ssh-keygen on PATH");
    // An ssh-keygen that, as another run might, puts a key in place while it works.
    const bin = join(dir, "bin-racing");
    await mkdir(bin);
    const deploy = join(dir, "deploy-racing");
    await mkdir(deploy);
    const theirs = join(deploy, "ssh_client_key");
    await writeFile(join(bin, "ssh-keygen"), `#!/bin/sh\n${real} "$@" && echo theirs > ${theirs}\n`, { mode: 0o755 });
    const savedPath = process.env["PATH"];
    process.env["PATH"] = `${bin}:${savedPath ?? ""}`;
    try {
      await assert.rejects(ensureKeyPair(theirs, `${theirs}.pub`, "racing"), /ssh_client_key appeared while a new key pair was being made; it is kept/);
    } finally {
      process.env["PATH"] = savedPath;
    }
    assert.equal(await readFile(theirs, "utf8"), "theirs\n");
    assert.deepEqual((await readdir(deploy)).sort(), ["ssh_client_key"], "no half pair, no temporary files");
  });
});

describe("reading a deploy directory", () => {
  test("runs ssh-keygen only for private keys that do not carry their public half (PEM)", async () => {
    const real = await findExecutable("ssh-keygen");
    assert.ok(real, "ssh-keygen on PATH");
    // A wrapper that notes each call and hands it to the real ssh-keygen.
    const bin = join(dir, "bin");
    const calls = join(dir, "ssh-keygen-calls");
    await mkdir(bin);
    await writeFile(join(bin, "ssh-keygen"), `#!/bin/sh\necho "$*" >> ${calls}\nexec ${real} "$@"\n`, { mode: 0o755 });
    const savedPath = process.env["PATH"];
    process.env["PATH"] = `${bin}:${savedPath ?? ""}`;
    try {
      const deploy = join(dir, "deploy-extslurm");
      await mkdir(deploy);
      const key = join(deploy, "ssh_client_key");
      await ensureKeyPair(key, `${key}.pub`, "openssh key");
      await rm(calls, { force: true });
      const env = getEnvironment("dev_dummyauth_extslurm");
      const openssh = await readDeployDir(env, deploy);
      assert.equal(existsSync(calls), false, "no ssh-keygen run for an OpenSSH key");
      assert.deepEqual(openssh.derivedPublicKeys, {});

      await writeFile(key, KEY_RSA_PEM.private, { mode: 0o600 });
      const pem = await readDeployDir(env, deploy);
      assert.match(await readFile(calls, "utf8"), /^-y -f .*ssh_client_key\n$/);
      assert.equal(pem.derivedPublicKeys?.["ssh_client_key"]?.split(" ").slice(0, 2).join(" "), KEY_RSA_PEM.public.split(" ").slice(0, 2).join(" "));
    } finally {
      process.env["PATH"] = savedPath;
    }
  });
});

describe("git clones", () => {
  test("clones a ref, keeps an existing clone, explains an unreachable remote", async () => {
    const origin = join(dir, "origin");
    await mkdir(origin);
    const git = (args: string[]) => run("git", ["-C", origin, ...args], { env: { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org" } });
    await git(["init", "-q"]);
    await writeFile(join(origin, "README"), "v1\n");
    await git(["add", "README"]);
    await git(["commit", "-qm", "one"]);
    await git(["tag", "v1.0.0"]);
    const target = join(dir, "_dev_build_data", "repo");
    const first = await cloneUnlessPresent({ url: origin, ref: "v1.0.0", dir: target });
    assert.equal(first.kind, "cloned");
    assert.equal(await readFile(join(target, "README"), "utf8"), "v1\n");
    await writeFile(join(target, "README"), "local change\n");
    const second = await cloneUnlessPresent({ url: origin, ref: "v1.0.0", dir: target });
    assert.equal(second.kind, "kept");
    assert.equal(await readFile(join(target, "README"), "utf8"), "local change\n");
    await assert.rejects(
      cloneUnlessPresent({ url: join(dir, "no-such-remote"), ref: "v1", dir: join(dir, "x", "y"), urlOverrideVar: "BRICS_ENV_X_GIT_URL" }),
      /cannot clone .*\n[\s\S]*put a local clone there yourself[\s\S]*BRICS_ENV_X_GIT_URL/,
    );
    assert.equal(existsSync(join(dir, "x", "y")), false);
  });

  test("tells whether a clone is at a ref", async () => {
    const repo = join(dir, "at-ref");
    await mkdir(repo);
    const git = (args: string[]) => run("git", ["-C", repo, ...args], { env: { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org" } });
    await git(["init", "-q", "-b", "main"]);
    await writeFile(join(repo, "README"), "one\n");
    await git(["add", "README"]);
    await git(["commit", "-qm", "one"]);
    await git(["tag", "-a", "-m", "annotated", "v1.0.0"]);
    await writeFile(join(repo, "README"), "two\n");
    await git(["commit", "-qam", "two"]);
    assert.equal(await cloneIsAt(repo, "main"), true);
    assert.equal(await cloneIsAt(repo, "v1.0.0"), false, "HEAD is past the tag");
    assert.equal(await cloneIsAt(repo, "no-such-ref"), false);
    await git(["checkout", "-q", "--detach", "v1.0.0"]);
    assert.equal(await cloneIsAt(repo, "v1.0.0"), true, "an annotated tag is compared by its commit");
    assert.equal(await cloneIsAt(join(dir, "not-a-repo-" + Date.now()), "main"), false);
  });
});

describe("deploy directory writes", () => {
  test("never overwrites unless told; applies the mode", async () => {
    const f = join(dir, "deploy", "file");
    await writeFileAtomic(f, "one", { mode: 0o600 });
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    await assert.rejects(writeFileAtomic(f, "two"), FileExistsError);
    assert.equal(await readFile(f, "utf8"), "one");
    await writeFileAtomic(f, "three", { overwrite: true, mode: 0o644 });
    assert.equal(await readFile(f, "utf8"), "three");
  });
});

describe("hub health", () => {
  test("builds the URL from baseUrl", () => {
    assert.equal(healthUrl("/"), "http://127.0.0.1:8000/hub/health");
    assert.equal(healthUrl("/jupyter/"), "http://127.0.0.1:8000/jupyter/hub/health");
    assert.equal(healthUrl("jupyter"), "http://127.0.0.1:8000/jupyter/hub/health");
  });

  test("waits for 200 and times out otherwise", async () => {
    let calls = 0;
    const server = createServer((_req, res) => {
      calls += 1;
      res.statusCode = calls >= 3 ? 200 : 503;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const ok = await waitForHealth(`http://127.0.0.1:${port}/hub/health`, { timeoutMs: 10_000, intervalMs: 50 });
      assert.equal(ok.ok, true);
      const bad = await waitForHealth(`http://127.0.0.1:${port}/nope`, {
        timeoutMs: 300,
        intervalMs: 50,
        abortCheck: async () => (calls > 100 ? "gave up" : undefined),
      });
      assert.equal(bad.ok, true); // the server now answers 200 to every path
    } finally {
      server.close();
    }
    const refused = await waitForHealth(`http://127.0.0.1:${port}/hub/health`, { timeoutMs: 300, intervalMs: 50 });
    assert.equal(refused.ok, false);
    assert.equal(refused.ok ? "" : refused.last, "ECONNREFUSED");
  });

  test("says what the last answer was: a status, or none in time", async () => {
    const held: ServerResponse[] = [];
    const server = createServer((req, res) => {
      if (req.url === "/silent") held.push(res);
      else {
        res.statusCode = 503;
        res.end("starting");
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const unavailable = await waitForHealth(`http://127.0.0.1:${port}/hub/health`, { timeoutMs: 300, intervalMs: 50 });
      assert.deepEqual(unavailable.ok ? undefined : unavailable.last, "HTTP 503");
      const silent = await waitForHealth(`http://127.0.0.1:${port}/silent`, { timeoutMs: 1200, intervalMs: 50 });
      assert.deepEqual(silent.ok ? undefined : silent.last, "TimeoutError");
    } finally {
      for (const res of held) res.end();
      server.close();
    }
  });
});

describe("podman images", { skip: busyboxMissingReason() }, () => {
  const id = uniqueId("bricsenvtestimg");
  const base = `localhost/brics-env-test-busybox:${id}`;
  const built = `localhost/brics-env-test-built:${id}`;
  const secretBuilt = `localhost/brics-env-test-secret:${id}`;
  after(async () => {
    await removeImage(secretBuilt);
    await removeImage(built);
    await removeImage(base);
  });

  test("builds a target stage with build args, streaming progress", async () => {
    await makeBusyboxImage(base);
    const ctx = join(dir, "ctx");
    await mkdir(ctx);
    await writeFile(
      join(ctx, "Containerfile"),
      `ARG BASE_IMAGE\nFROM \${BASE_IMAGE} AS stage-base\nARG GREETING=none\nRUN echo "$GREETING" > /greeting\nFROM stage-base AS stage-dev\nRUN echo dev > /stage\nFROM stage-base AS stage-prod\nRUN echo prod > /stage\n`,
    );
    const lines: string[] = [];
    await buildImage({
      containerfile: join(ctx, "Containerfile"),
      context: ctx,
      tag: built,
      target: "stage-dev",
      buildArgs: { BASE_IMAGE: base, GREETING: "hi there" },
      onLine: (l) => lines.push(l),
    });
    assert.ok(lines.some((l) => /STEP|COMMIT/.test(l)), "progress lines were streamed");
    assert.equal(await imageExists(built), true);
    const { stdout } = await run("podman", ["run", "--rm", built, "cat", "/greeting", "/stage"]);
    assert.equal(stdout, "hi there\ndev\n");
  });

  test("a build secret reaches the step that mounts it, and no command line, image history, configuration or file", async () => {
    const secret = `netrc-${randomBytes(12).toString("hex")}`;
    const ctx = join(dir, "ctx-secret");
    await mkdir(ctx);
    // The step prints what it got (this test's proof of delivery) and stays long enough to be seen.
    await writeFile(
      join(ctx, "Containerfile"),
      `ARG BASE_IMAGE\nFROM \${BASE_IMAGE}\nRUN --mount=type=secret,id=pip_netrc cat /run/secrets/pip_netrc; echo; sleep 1\nRUN ls -a /run > /run-listing\n`,
    );
    const tmpBefore = (await readdir(tmpdir())).filter((f) => f.startsWith("brics-env-build-secrets-"));
    const lines: string[] = [];
    const watch = await watchCmdlines(() =>
      buildImage({
        containerfile: join(ctx, "Containerfile"),
        context: ctx,
        tag: secretBuilt,
        buildArgs: { BASE_IMAGE: base },
        secrets: [new BuildSecret("pip_netrc", secret)],
        onLine: (l) => lines.push(l),
      }),
    );
    assert.ok(lines.includes(secret), `the step read the secret:\n${lines.join("\n")}`);
    const build = watch.seen.find((l) => / build .*--secret id=pip_netrc,src=\S*brics-env-build-secrets-/.test(l));
    assert.ok(build !== undefined && watch.scans > 20, `podman build was seen (${watch.scans} scans)`);
    assert.ok(watch.seen.some((l) => l.includes("sleep 1")), "the step's own processes were seen");
    assert.deepEqual(watch.seen.filter((l) => l.includes(secret)), [], "no command line holds the secret");
    const history = (await run("podman", ["history", "--no-trunc", secretBuilt])).stdout;
    assert.match(history, /--mount=type=secret,id=pip_netrc/);
    assert.ok(!history.includes(secret), "podman history");
    assert.ok(!(await run("podman", ["image", "inspect", secretBuilt])).stdout.includes(secret), "podman image inspect");
    const { stdout } = await run("podman", ["run", "--rm", secretBuilt, "sh", "-c", "cat /run-listing; cat /run/secrets/pip_netrc 2>/dev/null || echo no-secret-file"]);
    assert.ok(!stdout.includes(secret) && stdout.includes("no-secret-file"), stdout);
    const tmpAfter = (await readdir(tmpdir())).filter((f) => f.startsWith("brics-env-build-secrets-"));
    assert.deepEqual(tmpAfter, tmpBefore, "the secret's file is removed after the build");
  });

  test("a base image that cannot be pulled names the image and the override", async () => {
    // Port 1 on loopback refuses at once: no traffic leaves the machine.
    await assert.rejects(ensureImage("127.0.0.1:1/nothing/here:1", "BRICS_ENV_JUPYTERHUB_BASE_IMAGE", { timeoutMs: 60_000, moreHelp: ["try bootstrap-bases"] }), (err: Error) => {
      assert.match(err.message, /cannot pull image 127\.0\.0\.1:1\/nothing\/here:1/);
      assert.match(err.message, /- try bootstrap-bases/);
      assert.match(err.message, /BRICS_ENV_JUPYTERHUB_BASE_IMAGE/);
      return true;
    });
    assert.equal(await ensureImage(base, "X"), "present");
  });
});
