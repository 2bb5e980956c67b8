/** Talk to tallyd's management console like `nc`: one command, the reply up to a terminator. */
import net from 'node:net';

/** Sends `cmd` and resolves with the reply once `until` appears in it (or the socket closes). */
export function askConsole(port: number, cmd: string, until = 'END\n\n', timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(port, '127.0.0.1');
    let text = '';
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no ${JSON.stringify(until)} in reply to ${cmd}: ${JSON.stringify(text)}`));
    }, timeoutMs);
    sock.setEncoding('ascii');
    sock.on('data', (d: string) => {
      text += d;
      if (until && text.includes(until)) {
        clearTimeout(t);
        sock.end();
        resolve(text);
      }
    });
    sock.on('close', () => {
      clearTimeout(t);
      resolve(text);
    });
    sock.on('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    sock.write(`${cmd}\n`);
  });
}

/** The whole `health` reply: its lines arrive in one write. */
export function askHealth(port: number, cmd = 'health'): Promise<string> {
  return askConsole(port, cmd, '\n');
}
