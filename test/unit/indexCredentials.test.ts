import assert from "node:assert/strict";
import { inspect } from "node:util";
import { describe, it } from "node:test";
import { getEnvironment } from "../../src/plan/environments.js";
import { imageBuilds } from "../../src/plan/images.js";
import { IndexUrlError, maskUrlCredentials, PIP_NETRC_SECRET, renderNetrc, splitIndexCredentials } from "../../src/plan/indexCredentials.js";

const TOKEN = "s3cr3t-T0ken";
const HUB_ARGS = "BASE_IMAGE=quay.io/jupyterhub/jupyterhub:5.4.2\nBRICSAUTHENTICATOR_REQUIREMENT=bricsauthenticator==0.8.0\nPIP_INDEX_URL=\n";
const SLURM_ARGS = "BASE_IMAGE=docker.io/nathanhess/slurm:full-root\nSLURMSPAWNER_WRAPPERS_REQUIREMENT=slurmspawner_wrappers==0.2.1\nPIP_INDEX_URL=\n";
const argfiles = { brics_jupyterhub: HUB_ARGS, brics_slurm: SLURM_ARGS };

describe("a package index URL with a user name and password", () => {
  it("becomes a build argument without them and a netrc build secret with them, for every image", () => {
    const builds = imageBuilds(getEnvironment("dev_dummyauth"), {
      argfiles,
      variables: { BRICS_ENV_PIP_INDEX_URL: `https://ci-bot:${TOKEN}@mirror.example.org:8443/pypi/simple/` },
    });
    assert.equal(builds.length, 2);
    for (const b of builds) {
      assert.equal(b.buildArgs.PIP_INDEX_URL, "https://mirror.example.org:8443/pypi/simple/");
      assert.ok(!JSON.stringify(b.buildArgs).includes(TOKEN), "no build argument holds the token");
      assert.deepEqual(
        b.secrets.map((s) => [s.id, s.content()]),
        [[PIP_NETRC_SECRET, `machine mirror.example.org login ci-bot password ${TOKEN}\n`]],
      );
      // A plan that is printed or logged shows no secret.
      assert.ok(!JSON.stringify(b).includes(TOKEN), "JSON of the plan");
      assert.ok(!inspect(b, { depth: 10 }).includes(TOKEN), "util.inspect of the plan");
    }
  });

  it("is split the same when the argfile pins it (a site's mirror), and a URL without them is kept as it is", () => {
    const pinned = imageBuilds(getEnvironment("prod"), { argfiles: { brics_jupyterhub: HUB_ARGS.replace("PIP_INDEX_URL=", `PIP_INDEX_URL=http://u:${TOKEN}@10.0.0.1/simple`) } });
    assert.equal(pinned[0]!.buildArgs.PIP_INDEX_URL, "http://10.0.0.1/simple");
    assert.equal(pinned[0]!.secrets[0]!.content(), `machine 10.0.0.1 login u password ${TOKEN}\n`);
    for (const url of ["", "http://127.0.0.1:3141/simple", "https://mirror.example.org/simple/?x=a@b"]) {
      const b = imageBuilds(getEnvironment("prod"), { argfiles, variables: { BRICS_ENV_PIP_INDEX_URL: url } })[0]!;
      assert.equal(b.buildArgs.PIP_INDEX_URL, url);
      assert.deepEqual(b.secrets, []);
    }
  });

  it("decodes percent-encoding and takes a token alone as the user name", () => {
    assert.deepEqual(splitIndexCredentials("https://me%40corp:p%40ss%3Aword@h.example/simple", "X"), {
      url: "https://h.example/simple",
      credentials: { host: "h.example", login: "me@corp", password: "p@ss:word" },
    });
    // An unencoded '@' in the password: the authority ends at the last one.
    assert.deepEqual(splitIndexCredentials("https://u:p@ss@h.example/simple", "X").credentials, { host: "h.example", login: "u", password: "p@ss" });
    const tokenOnly = splitIndexCredentials(`https://${TOKEN}@h.example/simple`, "X");
    assert.deepEqual(tokenOnly, { url: "https://h.example/simple", credentials: { host: "h.example", login: TOKEN, password: "" } });
    assert.equal(renderNetrc(tokenOnly.credentials!), `machine h.example login ${TOKEN}\n`);
  });

  it("is masked in messages", () => {
    assert.equal(maskUrlCredentials(`https://u:${TOKEN}@h/simple`), "https://****:****@h/simple");
    assert.equal(maskUrlCredentials(`https://${TOKEN}@h/simple`), "https://****@h/simple");
    assert.equal(maskUrlCredentials(`https://u:p@ss@h/simple`), "https://****:****@h/simple");
    assert.equal(maskUrlCredentials("https://h/simple?a@b"), "https://h/simple?a@b");
  });

  it("that cannot be handed over safely is refused, naming the variable or argfile key, without the secret", () => {
    const cases: Array<[string, RegExp]> = [
      [`ftp://u:${TOKEN}@h/simple`, /only passed to http:\/\/ and https:\/\//],
      [`https://u:${TOKEN}%zz@h/simple`, /not valid percent-encoding/],
      [`https://u:${TOKEN}%20x@h/simple`, /white space, quotes/],
      [`https://u:${TOKEN}%23x@h/simple`, /white space, quotes, '#'/],
      [`https://:${TOKEN}@h/simple`, /the user name must be given/],
      [`https://u:${TOKEN}@[::1]:3141/simple`, /IPv6/],
      [`https://u:${TOKEN}@/simple`, /is not a URL/],
    ];
    for (const [bad, why] of cases) {
      assert.throws(
        () => imageBuilds(getEnvironment("prod"), { argfiles, variables: { BRICS_ENV_PIP_INDEX_URL: bad } }),
        (e: unknown) => {
          assert.ok(e instanceof IndexUrlError, String(e));
          assert.match(e.message, /^BRICS_ENV_PIP_INDEX_URL=\w+:\/\/\*\*\*\*(:\*\*\*\*)?@/);
          assert.match(e.message, why);
          assert.ok(!e.message.includes(TOKEN), e.message);
          return true;
        },
        bad,
      );
    }
    assert.throws(
      () => imageBuilds(getEnvironment("prod"), { argfiles: { brics_jupyterhub: HUB_ARGS.replace("PIP_INDEX_URL=", `PIP_INDEX_URL=ftp://u:${TOKEN}@h/`) } }),
      /^IndexUrlError: brics_jupyterhub\/argfile\.conf: PIP_INDEX_URL=ftp:\/\/\*\*\*\*:\*\*\*\*@h\/: /,
    );
  });
});
