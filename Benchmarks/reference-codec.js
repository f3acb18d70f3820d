// The same vectors as Benchmarks/CodecBenchmark through Debian's node-socket.io-parser.
"use strict";
const { Decoder, Encoder } = require("socket.io-parser");

const nested = '["update",' + '{"id":12345,"name":"a name \\u00e9","tags":["x","y"],"n":0.25,"ok":true},'.repeat(24) + '{"end":null}]';
const vectors = [
  { name: "small event", text: '2["chat message",{"text":"hello","from":"alice"}]', attachments: [] },
  { name: "ack", text: '3/admin,13["ok",42]', attachments: [] },
  { name: "2 KB nested event", text: "2" + nested, attachments: [] },
  { name: "1 MB binary event", text: '51-["upload",{"_placeholder":true,"num":0}]', attachments: [Buffer.alloc(1 << 20, 7)] },
];

function measure(name, bytes, body) {
  let iterations = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  do {
    for (let i = 0; i < 64; i++) body();
    iterations += 64;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  } while (elapsed < 1.0);
  const perSecond = iterations / elapsed;
  console.log(`${name}\t${Math.round(perSecond)}\t${Math.round((perSecond * bytes) / 100000) / 10}`);
}

console.log("vector\tpackets/s\tMB/s");
for (const vector of vectors) {
  const bytes = Buffer.byteLength(vector.text) + vector.attachments.reduce((sum, a) => sum + a.length, 0);
  measure(`decode ${vector.name}`, bytes, () => {
    const decoder = new Decoder();
    let packet;
    decoder.on("decoded", (p) => (packet = p));
    decoder.add(vector.text);
    for (const attachment of vector.attachments) decoder.add(attachment);
    return packet;
  });
}
const encoder = new Encoder();
for (const vector of vectors) {
  const decoder = new Decoder();
  let packet;
  decoder.on("decoded", (p) => (packet = p));
  decoder.add(vector.text);
  for (const attachment of vector.attachments) decoder.add(attachment);
  const bytes = Buffer.byteLength(vector.text) + vector.attachments.reduce((sum, a) => sum + a.length, 0);
  measure(`encode ${vector.name}`, bytes, () => encoder.encode(packet));
}
