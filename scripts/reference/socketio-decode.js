// Decodes Socket.IO packets with the reference parser (Debian's node-socket.io-parser), for
// comparison with siotap's decoder. Input on stdin: a JSON array of cases, each
// {"frames": [{"text": "..."} | {"binary": "<base64>"}]}. Output: a JSON array with, per case,
// {"packets": [...]} or {"error": "<message>", "packets": [...decoded before the error]}.
// Buffers in decoded data are written as {"$binary": "<base64>"}.
"use strict";
const { Decoder } = require("socket.io-parser");

function plain(value) {
  if (Buffer.isBuffer(value)) return { $binary: value.toString("base64") };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value)) out[key] = plain(value[key]);
    return out;
  }
  return value;
}

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((testCase) => {
    const decoder = new Decoder();
    const packets = [];
    decoder.on("decoded", (packet) => {
      packets.push({ type: packet.type, nsp: packet.nsp, id: packet.id, data: plain(packet.data) });
    });
    try {
      for (const frame of testCase.frames) {
        decoder.add(frame.text !== undefined ? frame.text : Buffer.from(frame.binary, "base64"));
      }
      return { packets };
    } catch (error) {
      return { error: error.message, packets };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
