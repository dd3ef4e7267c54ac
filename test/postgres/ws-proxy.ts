/**
 * A WebSocket-to-TCP relay on 127.0.0.1, what Neon's `wsproxy` does in front of a Neon
 * database: each WebSocket's binary messages go to the PostgreSQL server named by its
 * `?address=host:port` and back, byte for byte. It lets `@neondatabase/serverless`'s Pool and
 * Client (configured through their documented `neonConfig` options) reach the local server;
 * the protocol they speak inside is PostgreSQL's own, answered by the real server.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { neonConfig } from "@neondatabase/serverless";
import { WebSocket, WebSocketServer } from "ws";

/** Starts the relay and points `neonConfig` at it; `close` stops it. */
export async function startNeonProxy(): Promise<{ close: () => Promise<void> }> {
  const server: Server = createServer();
  const wss = new WebSocketServer({ server });
  wss.on("connection", (socket, request) => {
    const address = new URL(request.url ?? "/", "http://127.0.0.1").searchParams.get("address") ?? "";
    const [host, port] = address.split(":");
    // Loopback only: this relay is for the test server, never for the network.
    if (host !== "127.0.0.1" && host !== "localhost") {
      socket.close();
      return;
    }
    const tcp = connect(Number(port), host);
    tcp.on("data", (data) => socket.send(data));
    socket.on("message", (data) => tcp.write(data as Buffer));
    tcp.on("close", () => socket.close());
    tcp.on("error", () => socket.close());
    socket.on("close", () => tcp.destroy());
    socket.on("error", () => tcp.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  neonConfig.webSocketConstructor = WebSocket;
  neonConfig.wsProxy = (host, hostPort) => `127.0.0.1:${port}/v1?address=${host}:${hostPort}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
      }),
  };
}
