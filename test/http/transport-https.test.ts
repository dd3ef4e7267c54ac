/**
 * Both transports over TLS: https receivers on 127.0.0.1 with certificates made for this run
 * (openssl), one trusted through NODE_EXTRA_CA_CERTS in a child process (Node reads it at start
 * only), so the real certificate check runs: a signed message is delivered to the trusted
 * receiver, and fails (to be retried) at a receiver whose certificate nobody vouches for.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bin, ROOT, run } from "../runtimes/support.ts";

const CHILD = `
import { createServer } from "node:https";
import { readFileSync } from "node:fs";
import * as fetchBuild from "${join(ROOT, "adapters/http.ts")}";
import * as nodeBuild from "${join(ROOT, "adapters/http-node.ts")}";
import { createMessage } from "${join(ROOT, "mod.ts")}";

const dir = process.argv[2];
async function serve(name) {
  const server = createServer(
    { key: readFileSync(dir + "/" + name + ".key"), cert: readFileSync(dir + "/" + name + ".pem") },
    (req, res) => { req.resume(); req.on("end", () => res.writeHead(204).end()); },
  );
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}
const servers = { trusted: await serve("trusted"), untrusted: await serve("untrusted") };
const secret = "whsec_" + Buffer.from("a test secret of 32 bytes, fine!").toString("base64");
const results = {};
for (const [name, build] of [["fetch", fetchBuild], ["node:http", nodeBuild]]) {
  for (const [which, server] of Object.entries(servers)) {
    const value = new TextEncoder().encode("{}");
    const message = createMessage({ id: "7", key: "k", value, headers: {}, timestamp: new Date(), retries: 0 });
    const sender = build.httpSender({ url: "https://localhost:" + server.address().port + "/hook", secret });
    await sender.send([message], AbortSignal.timeout(10_000));
    results[name + " " + which] = { transport: sender.transport, status: message.status };
  }
}
for (const server of Object.values(servers)) {
  server.closeAllConnections();
  server.close();
}
console.log(JSON.stringify(results));
`;

/** A self-signed certificate for localhost and 127.0.0.1, valid one day: `<name>.pem`, `<name>.key`. */
function certificate(dir: string, name: string): void {
  const args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"];
  args.push("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1");
  args.push("-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.pem`));
  execFileSync("openssl", args, { stdio: "ignore" });
}

describe("transports over https", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "edge-outbox-tls-"));

  beforeAll(() => {
    certificate(dir, "trusted");
    certificate(dir, "untrusted");
    writeFileSync(join(dir, "child.mts"), CHILD);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("delivers over TLS on both transports, with the certificate checked", async () => {
    const result = await run(bin("tsx"), [join(dir, "child.mts"), dir], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "trusted.pem") },
      timeoutMs: 90_000,
    });
    expect(result.code, result.output).toBe(0);
    expect(JSON.parse(result.output.trim().split("\n").at(-1)!)).toEqual({
      "fetch trusted": { transport: "fetch", status: 1 },
      "fetch untrusted": { transport: "fetch", status: 2 },
      "node:http trusted": { transport: "node:http", status: 1 },
      "node:http untrusted": { transport: "node:http", status: 2 },
    });
  });
});
