import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeHub } from "../../src/effects/hubApi.js";

describe("describeHub", () => {
  it("says the version and counts, in the singular where it is one", () => {
    assert.equal(describeHub({ version: "5.2.1", users: 1, servers: { running: 1, pending: 0 } }), "JupyterHub 5.2.1, 1 user, 1 server running");
    assert.equal(
      describeHub({ version: "5.4.2", users: 12, servers: { running: 0, pending: 2 } }),
      "JupyterHub 5.4.2, 12 users, 0 servers running, 2 starting",
    );
  });

  it("says why the hub did not answer", () => {
    assert.equal(describeHub({ error: "http://127.0.0.1:8000/hub/api/: [Errno 111] Connection refused" }), "not answering (http://127.0.0.1:8000/hub/api/: [Errno 111] Connection refused)");
  });
});
