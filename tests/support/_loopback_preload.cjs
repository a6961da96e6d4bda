// Loaded with `node --require` into an emulator process. Both emulators listen on every
// interface by default; tests may only use loopback, so every TCP listen is forced onto
// 127.0.0.1. With WEBKPL_LOOPBACK_FREE_PORTS=1 every requested port becomes 0 (a free port
// chosen by the kernel), which also works for CLIs that treat port 0 as "use the default".
// Each bound port is announced on stdout as one line:
//   webkpl-loopback-listen {"requested":4568,"port":39127}
// so the launcher can tell a process's listeners apart by the port it asked for.
// With WEBKPL_EXIT_WITH_PARENT=1 the process ends itself once its parent is gone (it is
// re-parented, so its ppid changes): a test runner killed mid-run leaves no emulator behind.
"use strict";

const net = require("node:net");

const HOST = "127.0.0.1";
const PREFIX = "webkpl-loopback-listen ";
const freePorts = process.env.WEBKPL_LOOPBACK_FREE_PORTS === "1";
const originalListen = net.Server.prototype.listen;

function toPort(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^[0-9]+$/.test(value)) return Number(value);
  return undefined;
}

function announce(server, requested) {
  server.once("listening", () => {
    const address = server.address();
    if (address === null || typeof address === "string") return;
    process.stdout.write(`${PREFIX}${JSON.stringify({ requested, port: address.port })}\n`);
  });
}

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [first] = args;
  if (first !== null && typeof first === "object" && !Array.isArray(first)) {
    // listen(options[, callback]); a handle or a unix path is not a TCP listener.
    if (first.path !== undefined || first.handle !== undefined || first._handle !== undefined) {
      if (first.path === undefined) {
        throw new Error("webkpl loopback preload refuses to listen on an inherited handle");
      }
      return originalListen.apply(this, args);
    }
    const requested = toPort(first.port) ?? 0;
    announce(this, requested);
    const options = { ...first, host: HOST, ipv6Only: false, port: freePorts ? 0 : requested };
    return originalListen.call(this, options, ...args.slice(1));
  }
  const requested = toPort(first);
  if (requested === undefined && first !== undefined && typeof first !== "function") {
    // listen(path[, backlog][, callback]): a unix socket, not a network port.
    return originalListen.apply(this, args);
  }
  // listen([port][, host][, backlog][, callback]): drop the host, keep backlog and callback.
  const rest = args.slice(requested === undefined ? 0 : 1);
  if (typeof rest[0] === "string") rest.shift();
  announce(this, requested ?? 0);
  return originalListen.call(this, freePorts ? 0 : (requested ?? 0), HOST, ...rest);
};

if (process.env.WEBKPL_EXIT_WITH_PARENT === "1") {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 500).unref();
}
