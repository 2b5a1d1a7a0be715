/**
 * A TCP relay from 127.0.0.1:port to PostgreSQL that a test can cut (its listener and every
 * connection through it) and open again: the database "goes away" without touching the server
 * other tests share.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** A relay from 127.0.0.1:port to PostgreSQL that can be cut (listener and every connection) and restored. */
export function pgRelay(port: number, target: URL): { open(): Promise<void>; cut(): Promise<void> } {
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  return {
    open: () =>
      new Promise((resolve, reject) => {
        server = createServer((client) => {
          const upstream = connect(Number(target.port || 5432), target.hostname);
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
            s.on('error', () => undefined);
          }
          client.pipe(upstream).pipe(client);
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    cut: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server?.close(() => resolve());
      }),
  };
}

