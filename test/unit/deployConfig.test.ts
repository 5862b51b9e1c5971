import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkValue, DEPLOY_CONFIG_KEYS, KEY_SPECS, keySpec, keysUsedBy, type DeployConfigKey } from "../../src/plan/deployConfig.js";
import { repoRoot } from "../../src/paths.js";
import { ENVIRONMENTS, getEnvironment } from "../../src/plan/environments.js";

const errors = (key: DeployConfigKey, value: unknown) => checkValue(key, value).filter((i) => i.severity === "error");
const ok = (key: DeployConfigKey, value: unknown) => assert.deepEqual(errors(key, value), [], `${key}=${JSON.stringify(value)}`);
const bad = (key: DeployConfigKey, value: unknown) =>
  assert.ok(errors(key, value).length > 0, `${key}=${JSON.stringify(value)} should be rejected`);

/** Password values in the documents anyone can read: the lines that set or show dummyAuthPassword. */
function publishedPasswords(): { file: string; value: string }[] {
  const root = repoRoot();
  const files = ["README.md", ...readdirSync(join(root, "docs")).map((f) => `docs/${f}`)];
  for (const env of readdirSync(join(root, "examples"))) {
    if (existsSync(join(root, "examples", env, "deploy-configmap.yaml"))) files.push(`examples/${env}/deploy-configmap.yaml`);
  }
  const found: { file: string; value: string }[] = [];
  for (const file of files) {
    const lines = readFileSync(join(root, file), "utf8").split("\n");
    let inSection = false;
    for (const line of lines) {
      if (line.startsWith("#")) inSection = line.includes("`dummyAuthPassword`");
      const yaml = /^\s*#?\s*dummyAuthPassword:\s*"([^"]*)"/.exec(line);
      const row = line.startsWith("| `dummyAuthPassword`") ? /`([^`]*)` \|\s*$/.exec(line) : null;
      const example = inSection ? /^- Example: `([^`]*)`/.exec(line) : null;
      for (const m of [yaml, row, example]) if (m !== null) found.push({ file, value: m[1]! });
    }
  }
  return found;
}

describe("deploy-config schema", () => {
  it("describes every key once, with an env var, an example that passes and a description", () => {
    assert.deepEqual(KEY_SPECS.map((s) => s.key), [...DEPLOY_CONFIG_KEYS]);
    const vars = new Set(KEY_SPECS.map((s) => s.envVar));
    assert.equal(vars.size, KEY_SPECS.length);
    for (const s of KEY_SPECS) {
      assert.match(s.envVar, /^DEPLOY_CONFIG_[A-Z_]+$/);
      assert.ok(s.description.length > 40, s.key);
      // The documented password is the one example meant to be refused (see below).
      if (s.key !== "dummyAuthPassword") assert.deepEqual(checkValue(s.key, s.example), [], `example of ${s.key}`);
    }
  });

  it("uses the env var names of FACTS.md", () => {
    const byKey = Object.fromEntries(KEY_SPECS.map((s) => [s.key, s.envVar]));
    assert.equal(byKey.dummyAuthPassword, "DEPLOY_CONFIG_DUMMYAUTH_PASSWORD");
    assert.equal(byKey.slurmSpawnerWrappersBin, "DEPLOY_CONFIG_SLURMSPAWNER_WRAPPERS_BIN");
    assert.equal(byKey.pollInterval, "DEPLOY_CONFIG_POLL_INTERVAL");
    assert.equal(byKey.startupPollInterval, "DEPLOY_CONFIG_STARTUP_POLL_INTERVAL");
  });

  it("follows the spec's table of which environments use which key", () => {
    const usage = (key: DeployConfigKey, env: string) => KEY_SPECS.find((s) => s.key === key)!.usage(getEnvironment(env));
    assert.equal(usage("devUsers", "prod"), "unused");
    assert.equal(usage("devUsers", "dev_realauth_zenithclient"), "required");
    assert.equal(usage("dummyAuthPassword", "dev_dummyauth_extslurm"), "required");
    assert.equal(usage("dummyAuthPassword", "dev_realauth"), "unused");
    assert.equal(usage("oidcServer", "dev_dummyauth"), "ignored");
    assert.equal(usage("jwtAudience", "prod"), "required");
    assert.equal(usage("pollInterval", "prod"), "optional");
    for (const env of ENVIRONMENTS) {
      // Upstream's prod and Zenith examples leave logLevel out; the hub then logs at INFO.
      assert.equal(usage("logLevel", env.name), "optional");
      for (const key of ["baseUrl", "sshHostname", "hubConnectUrl", "condaPrefixDir"] as const) {
        assert.equal(usage(key, env.name), "required");
      }
      assert.ok(keysUsedBy(env).every((s) => ["required", "optional"].includes(s.usage(env))));
    }
  });

  it("asks for numbers and booleans to be quoted", () => {
    const [issue] = errors("pollInterval", 60);
    assert.match(issue!.message, /quote/);
    assert.match(errors("logLevel", true)[0]!.message, /quote/);
    bad("devUsers", null);
    bad("devUsers", ["alice.proj1"]);
  });

  it("checks logLevel against Python's level names", () => {
    for (const v of ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]) ok("logLevel", v);
    for (const v of ["debug", "WARN", "", "INFO "]) bad("logLevel", v);
  });

  it("checks baseUrl is a safe path, accepting a missing leading or trailing slash as JupyterHub does", () => {
    for (const v of ["/", "/jupyter/", "/a/b-c_d.e/", "/jupyter", "jupyter/", "jupyter"]) ok("baseUrl", v);
    for (const v of ["//", "/a//b/", "/a/../b/", "..", "/a b/", "/é/", ""]) bad("baseUrl", v);
  });

  it("checks devUsers names and duplicates", () => {
    ok("devUsers", "alice.proj1");
    ok("devUsers", "a_b-c.p-1_x alice.proj1");
    for (const v of ["Alice.proj1", "alice", "1alice.proj1", "alice.proj1  bob.proj1", " alice.proj1", "alice.proj1 alice.proj1", "alice.proj.x", `${"a".repeat(30)}.proj`])
      bad("devUsers", v);
  });

  it("checks sshHostname is a host name or an IP address", () => {
    for (const v of ["localhost", "slurm-login.example.org", "10.0.0.1", "::1", "fe80::1", "a1"]) ok("sshHostname", v);
    for (const v of ["-bad.example", "bad_name", "999.1.1.1", "host.", "ssh://host", "[::1]"]) bad("sshHostname", v);
  });

  it("checks paths are absolute and plain", () => {
    ok("condaPrefixDir", "/opt/conda-3.1/x+y_z");
    for (const v of ["opt/conda", "/opt/../etc", "/opt/my conda", "/opt/~user", "/opt/*"]) bad("condaPrefixDir", v);
  });

  it("checks URLs parse, are http(s) and carry no credentials", () => {
    for (const v of ["http://127.0.0.1:8081", "https://hub.example.org", "http://[::1]:8081"]) ok("hubConnectUrl", v);
    for (const v of ["ftp://x", "http://user:pw@host:8081", "127.0.0.1:8081", "http://host:8081/path", "http://host?x=1", "http://"])
      bad("hubConnectUrl", v);
    ok("oidcServer", "https://keycloak.example.org/realms/brics");
    bad("oidcServer", "https://keycloak.example.org/realms/brics?x");
  });

  it("checks the poll intervals are positive whole seconds", () => {
    ok("pollInterval", "5");
    for (const v of ["0", "-1", "1.5", "5s", "0060"]) bad("pollInterval", v);
  });

  it("checks idleTimeout is whole seconds, 0 turning it off", () => {
    for (const v of ["0", "30", "3600", "86400"]) ok("idleTimeout", v);
    for (const v of ["-1", "1.5", "1h", "0060", "", " 30", "99999999"]) bad("idleTimeout", v);
    assert.match(errors("idleTimeout", "1h")[0]!.message, /0 turns it off/);
  });

  it("checks the server limits are whole numbers, 0 meaning no limit", () => {
    for (const key of ["concurrentSpawnLimit", "activeServerLimit"] as const) {
      for (const v of ["0", "1", "250"]) ok(key, v);
      for (const v of ["-1", "1.5", "ten", "", "01"]) bad(key, v);
    }
  });

  it("checks adminUsers are hub user names, and accepts none", () => {
    for (const v of ["", "alice", "alice bob_2 c-d"]) ok("adminUsers", v);
    for (const v of ["Alice", "alice.proj1", "1alice", "alice  bob", " alice", "alice alice", "alice,bob"]) bad("adminUsers", v);
    assert.match(errors("adminUsers", "alice.proj1")[0]!.message, /not a hub user name \(the <USER> part of <USER>\.<PROJECT>\)/);
    assert.match(errors("adminUsers", "alice bob alice")[0]!.message, /lists "alice" more than once/);
  });

  it("takes the announcement as one line of text: HTML and quotes allowed, line breaks and length not", () => {
    for (const v of ["", "<b>Maintenance</b> on Friday; don't \"panic\" & save", "<script>alert(1)</script>", "x".repeat(500)]) ok("announcement", v);
    for (const v of ["two\nlines", "tab\there", "x".repeat(501)]) bad("announcement", v);
    assert.match(errors("announcement", "x".repeat(501))[0]!.message, /keep it to 500/);
  });

  it("warns about a short dummyAuthPassword but accepts it", () => {
    const issues = checkValue("dummyAuthPassword", "short");
    assert.deepEqual(issues.map((i) => i.severity), ["warning"]);
    bad("dummyAuthPassword", "");
    bad("dummyAuthPassword", "line\nbreak-and-more-than-sixteen");
    ok("dummyAuthPassword", `it's a "long" $(pass) phrase`);
  });

  it("refuses a dummyAuthPassword of white space or copied from this repository's documents, and warns about upstream's", () => {
    for (const v of [" ", "   ", "\t\t"]) assert.match(errors("dummyAuthPassword", v)[0]?.message ?? "", /white space|control character/, JSON.stringify(v));
    const example = keySpec("dummyAuthPassword").example;
    for (const v of [example, ` ${example}`]) {
      assert.match(errors("dummyAuthPassword", v)[0]?.message ?? "", /is the example value of this repository's documentation and examples, which anyone can read/);
    }
    // Every password value written in the README, docs/ and examples/ is refused.
    const published = publishedPasswords();
    assert.ok(published.length >= 4, `found the documented passwords: ${published.length}`);
    for (const { file, value } of published) assert.equal(errors("dummyAuthPassword", value).length, 1, `${file}: ${value}`);
    const upstream = checkValue("dummyAuthPassword", "MyVerySecurePassword");
    assert.deepEqual(upstream.map((i) => i.severity), ["warning"]);
    assert.match(upstream[0]!.message, /upstream scripts' example ConfigMaps/);
  });

  it("rejects a placeholder left by init", () => {
    assert.match(errors("sshHostname", "<host name of the Slurm login node>")[0]!.message, /placeholder/);
  });

  it("refuses shell injection in every key that reaches a shell or Python config", () => {
    const attacks = ["; rm -rf /", "$(id)", "`id`", "'", '"', "\nid", " && id", "|id", "\\", "${IFS}"];
    for (const spec of KEY_SPECS) {
      // Free text: the password is only compared by Python, the announcement only shown (HTML-escaped).
      if (spec.key === "dummyAuthPassword" || spec.key === "announcement") continue;
      for (const a of attacks) {
        bad(spec.key, spec.example + a);
        bad(spec.key, a);
      }
    }
    bad("sshHostname", "localhost; rm -rf /");
  });
});
