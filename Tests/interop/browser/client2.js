// The official socket.io-client 2.3.0 browser bundle (Engine.IO 3, Socket.IO protocol v4), run in
// node as a browser would run it: in a vm context whose WebSocket and XMLHttpRequest are Debian's
// node-ws and node-xmlhttprequest. Plays the chat contract (the token in the query, as protocol v4
// has no CONNECT payload for /; a forged one refused) and the conformance one (binary in an ack,
// /custom), then prints {seen, errors} as JSON.
//
//   node client2.js BUNDLE '{"chat": URL, "conformance": URL, "transports": [...], "token": T, "forged": F}'
"use strict";
const fs = require("fs");
const vm = require("vm");
const WebSocket = require("/usr/share/nodejs/ws");
const { XMLHttpRequest } = require("/usr/share/nodejs/xmlhttprequest");

const [bundlePath, configText] = process.argv.slice(2);
const config = JSON.parse(configText);
const page = new URL(config.chat);

const context = {
  WebSocket,
  XMLHttpRequest,
  location: { protocol: page.protocol, hostname: page.hostname, port: page.port, host: page.host, href: page.href },
  navigator: { userAgent: "node" },
  setTimeout, clearTimeout, setInterval, clearInterval, console, btoa, atob,
  // node-ws hands over this realm's ArrayBuffers: the bundle must see the same constructors.
  ArrayBuffer, Uint8Array, DataView,
};
context.self = context;
context.window = context;
vm.createContext(context);
vm.runInContext(fs.readFileSync(bundlePath, "utf8"), context, { filename: "socket.io.js" });

// The scenario runs inside the context, so that its ArrayBuffers are the bundle's own.
function scenario(config) {
  const seen = [];
  const record = (step, value) => seen.push([step, value]);
  // node-xmlhttprequest has no binary responses: polling asks for base64 (b64=1), as old
  // browsers did.
  const options = { transports: config.transports, upgrade: config.transports.length > 1, reconnection: false,
                    forceNew: true, forceBase64: config.transports[0] === "polling", timeout: 5000 };
  const next = (socket, event, ms = 5000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    socket.once(event, (...args) => { clearTimeout(timer); resolve(args); });
  });
  const upgraded = async (socket) => {
    const engine = socket.io.engine;
    if (config.transports.length > 1 && engine.transport.name !== "websocket") {
      await next(engine, "upgrade");
    }
    return engine.transport.name;
  };
  const withQuery = (url, query) => url + (url.includes("?") ? "&" : "?") + query;

  return (async () => {
    const forged = io(withQuery(config.chat, "token=" + config.forged), options);
    record("refused", (await next(forged, "error"))[0]);
    forged.close();

    const alice = io(withQuery(config.chat, "token=" + config.token), options);
    await next(alice, "connect");
    record("chat transport", await upgraded(alice));
    const response = next(alice, "chat response");
    alice.emit("message", { message: "hi from socket.io-client 2", sender: "alice" });
    record("chat response", (await response)[0]);
    alice.close();

    const root = io(config.conformance, options);
    await next(root, "connect");
    record("conformance transport", await upgraded(root));
    const ack = await new Promise((resolve) => {
      root.emit("message-with-ack", new Uint8Array([1, 2, 3]).buffer, "text", (...args) => resolve(args));
    });
    record("binary ack", [Array.from(new Uint8Array(ack[0])), ack[1]]);
    const custom = root.io.socket("/custom");  // on the same Engine.IO connection
    const echo = next(custom, "message-back");
    await next(custom, "connect");
    custom.emit("message", "on custom", 1.5);
    record("custom echo", await echo);
    custom.close();
    root.close();
    return seen;
  })();
}

context.config = config;
vm.runInContext(`(${scenario.toString()})(config)`, context)
  .then((seen) => ({ seen, errors: [] }), (error) => ({ seen: [], errors: [String((error && error.stack) || error)] }))
  .then((result) => {
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(0);
  });
setTimeout(() => {
  process.stdout.write(JSON.stringify({ seen: [], errors: ["timed out after 30 s"] }) + "\n");
  process.exit(1);
}, 30000).unref();
