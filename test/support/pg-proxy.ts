/**
 * A TCP proxy on 127.0.0.1 in front of the PostgreSQL server that can cut a connection right
 * after a given statement reached the server, before its reply: the way a network failure
 * leaves a client not knowing what became of its statement.
 */
import net from "node:net";

/** A running proxy: its URL for a database, and a switch for the next cut. */
export interface CuttingProxy {
  /** `postgres://` URL of `database` through the proxy. */
  url(database: string): string;
  /**
   * The next connection to send a message containing `text` (in any case: drivers write
   * `COMMIT` or `commit`) has it delivered, then is cut.
   */
  cutAfter(text: string): void;
  /** Whether the cut asked for last still waits for its statement (false once it was made). */
  armed(): boolean;
  close(): Promise<void>;
}

/** Starts a proxy to the server at `target` (host and port of a PostgreSQL URL). */
export async function startCuttingProxy(target: { host: string; port: number }): Promise<CuttingProxy> {
  let cutOn: string | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    let cut = false;
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    }
    client.on("data", (data) => {
      if (cut) return;
      upstream.write(data);
      if (cutOn !== undefined && data.toString("latin1").toUpperCase().includes(cutOn)) {
        cutOn = undefined;
        cut = true;
        // The statement is on its way; its reply never comes back.
        setTimeout(() => {
          client.destroy();
          upstream.end();
        }, 100);
      }
    });
    upstream.on("data", (data) => {
      if (!cut) client.write(data);
    });
    client.on("close", () => upstream.end());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    cutAfter: (text) => {
      cutOn = text.toUpperCase();
    },
    armed: () => cutOn !== undefined,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
