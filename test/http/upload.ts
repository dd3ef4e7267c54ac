/** A hostile client for receiver tests: uploads a large body as fast as the server takes it. */
import { request } from "node:http";

const MiB = 1024 * 1024;

/**
 * POSTs `mebibytes` MiB of "a" to `url`, chunked (no content-length), pausing whenever the
 * socket is full. Resolves with the status, or 0 when the server closed the connection first,
 * and how many MiB were handed to the socket by then.
 */
export function upload(
  url: string,
  headers: Record<string, string>,
  mebibytes: number,
): Promise<{ status: number; sent: number }> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(MiB, 97);
    let sent = 0;
    const req = request(url, { method: "POST", headers }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, sent });
      req.destroy();
    });
    req.on("error", () => resolve({ status: 0, sent }));
    const pump = () => {
      while (sent < mebibytes) {
        sent++;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}
