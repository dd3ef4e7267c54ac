/** The end of every loopback server a benchmark runs as a child process. */
import type { Server } from "node:http";

/**
 * Listens on 127.0.0.1 and an ephemeral port, prints `{"port":N}` (the handshake `spawnTs`
 * reads), keeps connections alive across requests, and exits on SIGTERM or when the parent
 * goes away.
 */
export function announceOnLoopback(server: Server): void {
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    if (address && typeof address === "object") console.log(JSON.stringify({ port: address.port }));
  });
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
  process.on("disconnect", () => process.exit(0));
}
