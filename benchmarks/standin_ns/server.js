#!/usr/bin/env node
// A stand-in Network Server for the Gateway Server benchmarks: implements ttn.lorawan.v3.GsNs
// (HandleUplink, ReportTxAcknowledgment) from our own proto/ files and records, for every uplink, when it
// arrived and how long it took from the Gateway Server's datagram read (UplinkMessage.received_at) and from the
// simulator's send (the send-time stamp in the first 8 bytes of the FRMPayload).
//
// It has to be faster than the client it measures: a Python grpc.aio server tops out near the rate a Python
// client reaches, so this one is Node.js. Requests are kept as raw bytes and only the three top-level fields the
// measurement needs are read on the hot path; `--decode full` decodes every message with proto-loader instead
// (slower; for checking what the Gateway Server sends).
//
// Two engines serve the same two unary methods. `--engine http2` (the default) answers gRPC's framing itself on
// Node's own HTTP/2 server (nghttp2, in C++): a unary call is one HEADERS and one length-prefixed DATA frame in,
// HEADERS, an empty message and trailers with grpc-status out, which is all these two methods need. It costs a
// fraction of what `--engine grpc-js` (@grpc/grpc-js's server, the earlier default) costs per call, CPU the
// benchmarks' two cores otherwise take from the Gateway Server being measured. Both are kept so that one run can
// compare them.
//
// Control endpoint (HTTP on --control-port, loopback):
//   GET /stats           counts and per-uplink latencies (µs) since the last reset, plus one decoded sample
//   GET /stats?reset=1   the same, then start over
//   GET /reset           start over
// On SIGTERM/SIGINT the stats are written to --out FILE (if given) and the process exits 0.
// On start-up one JSON line {"grpc_port":..,"control_port":..} is printed to stdout.

'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const http2 = require('http2');

// Two transport settings grpc-js leaves at values that make a busy unary server idle, patched into every http2
// server it creates:
// - Nagle's algorithm stays on for accepted sockets, so with many calls in flight on one connection responses
//   wait for the client's delayed ACKs (http2 servers pass `noDelay` on to net.Server).
// - The connection-level receive window stays at HTTP/2's 64 KiB: a few hundred uplinks in flight fill it and
//   the client stalls until WINDOW_UPDATEs trickle back. Open it (and the per-stream window) wide.
const WINDOW = 32 << 20;
const createServer = http2.createServer;
http2.createServer = (options, ...rest) => {
  const opts = Object.assign({ noDelay: true }, options);
  opts.settings = Object.assign({}, opts.settings, { initialWindowSize: 4 << 20 });
  const server = createServer.call(http2, opts, ...rest);
  server.on('session', (session) => session.setLocalWindowSize(WINDOW));
  return server;
};

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

function parseArgs(argv) {
  const args = {
    host: '127.0.0.1',
    port: 0,
    controlPort: 0,
    protoRoot: path.resolve(__dirname, '..', '..', 'proto'),
    decode: 'fast',
    engine: 'http2',
    out: null,
    sample: 1,
  };
  for (let i = 2; i < argv.length; i++) {
    const [key, inline] = argv[i].split('=', 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (key) {
      case '--host': args.host = value(); break;
      case '--port': args.port = Number(value()); break;
      case '--control-port': args.controlPort = Number(value()); break;
      case '--proto-root': args.protoRoot = path.resolve(value()); break;
      case '--decode': args.decode = value(); break;
      case '--engine': args.engine = value(); break;
      case '--out': args.out = value(); break;
      default:
        process.stderr.write(`unknown argument ${argv[i]}\n`);
        process.exit(2);
    }
  }
  if (!['fast', 'full'].includes(args.decode)) {
    process.stderr.write('--decode is fast or full\n');
    process.exit(2);
  }
  if (!['http2', 'grpc-js'].includes(args.engine)) {
    process.stderr.write('--engine is http2 or grpc-js\n');
    process.exit(2);
  }
  return args;
}

const args = parseArgs(process.argv);

const packageDefinition = protoLoader.loadSync('ttn/lorawan/v3/networkserver.proto', {
  includeDirs: [args.protoRoot],
  keepCase: true,
  longs: String,
  enums: String,
  bytes: String, // base64, for the JSON sample
  defaults: false,
  oneofs: true,
});
const service = packageDefinition['ttn.lorawan.v3.GsNs'];
if (!service || !service.HandleUplink || !service.ReportTxAcknowledgment) {
  process.stderr.write('proto/ does not define ttn.lorawan.v3.GsNs with HandleUplink and ReportTxAcknowledgment\n');
  process.exit(1);
}

// Wall clock in nanoseconds as a float (sub-microsecond resolution), comparable with Python's time.time_ns().
const nowNs = () => (performance.timeOrigin + performance.now()) * 1e6;

// --- minimal protobuf reading of the three top-level UplinkMessage fields we need -----------------------------

function readVarint(buf, pos) {
  // Returns [value, nextPos]; values beyond 2^53 lose precision, which does not matter for lengths or times.
  let result = 0;
  let shift = 1;
  for (;;) {
    const b = buf[pos++];
    result += (b & 0x7f) * shift;
    if (b < 0x80) return [result, pos];
    shift *= 128;
  }
}

function skipField(buf, pos, wireType) {
  switch (wireType) {
    case 0: return readVarint(buf, pos)[1];
    case 1: return pos + 8;
    case 2: { const [len, p] = readVarint(buf, pos); return p + len; }
    case 5: return pos + 4;
    default: throw new Error(`unsupported wire type ${wireType}`);
  }
}

function timestampNs(buf, start, end) {
  let seconds = 0;
  let nanos = 0;
  let pos = start;
  while (pos < end) {
    const [key, p] = readVarint(buf, pos);
    pos = p;
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (field === 1 && wireType === 0) [seconds, pos] = readVarint(buf, pos);
    else if (field === 2 && wireType === 0) [nanos, pos] = readVarint(buf, pos);
    else pos = skipField(buf, pos, wireType);
  }
  return seconds * 1e9 + nanos;
}

// Send-time stamp of the simulator: FRMPayload bytes 0..7 of an unconfirmed/confirmed data-up frame.
function sendStampNs(buf, start, end) {
  const len = end - start;
  if (len < 1 + 7 + 1 + 8 + 4) return null;
  const mtype = buf[start] >> 5;
  if (mtype !== 2 && mtype !== 4) return null;
  const foptsLen = buf[start + 5] & 0x0f;
  const frm = start + 8 + foptsLen + 1;
  if (frm + 8 > end - 4) return null;
  const hi = buf.readUInt32BE(frm);
  const lo = buf.readUInt32BE(frm + 4);
  return hi * 4294967296 + lo;
}

// --- recording ------------------------------------------------------------------------------------------------

// Per-uplink figures go into growable Float64Arrays, not JS arrays of arrays: one small array per uplink survived
// into V8's old space and cost a 30-50 ms mark-compact pause every second or two under load, which showed up as
// latency spikes of the Gateway Server being measured.
class Series {
  constructor() {
    this.data = new Float64Array(1 << 16);
    this.length = 0;
  }

  push(value) {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  toJSON() {
    const out = new Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = Number.isNaN(this.data[i]) ? null : this.data[i];
    return out;
  }
}

let stats;
function reset() {
  stats = {
    uplinks: 0,
    tx_acks: 0,
    correlation_ids: 0,
    uplinks_without_received_at: 0,
    first_unix_ns: null,
    last_unix_ns: null,
    read_latency_us: new Series(),
    send_latency_us: new Series(),
    // Per stamped uplink: send stamp (ms since the epoch), send→receipt µs, read→receipt µs (NaN when unknown),
    // served as `stamped: [[sent, send_us, read_us or null], ...]` so a benchmark can count exactly the uplinks
    // its own step sent.
    stampedSent: new Series(),
    stampedSendUs: new Series(),
    stampedReadUs: new Series(),
    sampleRaw: null,
    sampleTxAckRaw: null,
  };
}
reset();

const fullUplink = service.HandleUplink.requestDeserialize;
const fullTxAck = service.ReportTxAcknowledgment.requestDeserialize;

function recordUplink(buf, now) {
  stats.uplinks++;
  if (stats.first_unix_ns === null) stats.first_unix_ns = now;
  stats.last_unix_ns = now;
  if (stats.sampleRaw === null) stats.sampleRaw = Buffer.from(buf);
  let receivedAt = 0;
  let sent = null;
  let pos = 0;
  const end = buf.length;
  while (pos < end) {
    const [key, p] = readVarint(buf, pos);
    pos = p;
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (wireType === 2) {
      const [len, q] = readVarint(buf, pos);
      if (field === 1) sent = sendStampNs(buf, q, q + len);
      else if (field === 6) receivedAt = timestampNs(buf, q, q + len);
      else if (field === 7) stats.correlation_ids++;
      pos = q + len;
    } else {
      pos = skipField(buf, pos, wireType);
    }
  }
  let readUs = null;
  if (receivedAt > 0) {
    readUs = Math.round((now - receivedAt) / 100) / 10;
    stats.read_latency_us.push(readUs);
  } else {
    stats.uplinks_without_received_at++;
  }
  if (sent !== null) {
    const sendUs = Math.round((now - sent) / 100) / 10;
    stats.send_latency_us.push(sendUs);
    stats.stampedSent.push(sent / 1e6);
    stats.stampedSendUs.push(sendUs);
    stats.stampedReadUs.push(readUs === null ? NaN : readUs);
  }
}

function snapshot() {
  const out = Object.assign({}, stats);
  delete out.sampleRaw;
  delete out.sampleTxAckRaw;
  delete out.stampedSent;
  delete out.stampedSendUs;
  delete out.stampedReadUs;
  out.read_latency_us = stats.read_latency_us.toJSON();
  out.send_latency_us = stats.send_latency_us.toJSON();
  const sent = stats.stampedSent.toJSON();
  const sendUs = stats.stampedSendUs.toJSON();
  const readUs = stats.stampedReadUs.toJSON();
  out.stamped = sent.map((value, i) => [value, sendUs[i], readUs[i]]);
  out.sample_uplink = stats.sampleRaw ? fullUplink(stats.sampleRaw) : null;
  out.sample_tx_ack = stats.sampleTxAckRaw ? fullTxAck(stats.sampleTxAckRaw) : null;
  out.decode = args.decode;
  return out;
}

// --- gRPC service ---------------------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0);
const definition = {};
for (const [name, method] of Object.entries(service)) {
  definition[name] = Object.assign({}, method, {
    requestDeserialize: (buf) => buf, // keep the bytes; decode lazily
    responseSerialize: () => EMPTY, // google.protobuf.Empty
  });
}

const handlers = {
  HandleUplink(call, callback) {
    const now = nowNs();
    const buf = call.request;
    if (args.decode === 'full') {
      const msg = fullUplink(buf);
      if (!msg) throw new Error('undecodable');
    }
    recordUplink(buf, now);
    callback(null, EMPTY);
  },
  ReportTxAcknowledgment(call, callback) {
    stats.tx_acks++;
    if (stats.sampleTxAckRaw === null) stats.sampleTxAckRaw = Buffer.from(call.request);
    callback(null, EMPTY);
  },
};

// --- the http2 engine: gRPC's unary framing on Node's HTTP/2 server ---------------------------------------------

const GRPC_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const OK_TRAILERS = { 'grpc-status': '0' };
const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]); // uncompressed, length 0: google.protobuf.Empty
const RAW = {
  '/ttn.lorawan.v3.GsNs/HandleUplink': 'HandleUplink',
  '/ttn.lorawan.v3.GsNs/ReportTxAcknowledgment': 'ReportTxAcknowledgment',
};

function refuse(stream, code, message) {
  // A "trailers-only" response: the status travels in the only HEADERS frame.
  // grpc-message is percent-encoded (gRPC over HTTP/2), so any error text makes a valid header.
  const status = { 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) };
  stream.respond(Object.assign({}, GRPC_HEADERS, status), { endStream: true });
}

function onStream(stream, headers) {
  const method = RAW[headers[':path']];
  const chunks = [];
  stream.on('data', (chunk) => chunks.push(chunk));
  stream.on('error', () => {}); // a client that resets its call; nothing to clean up
  stream.on('end', () => {
    if (stream.destroyed) return;
    if (method === undefined) {
      refuse(stream, 12, 'unknown method'); // UNIMPLEMENTED
      return;
    }
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
      refuse(stream, 13, 'expected one uncompressed message'); // INTERNAL
      return;
    }
    const call = { request: body.subarray(5) };
    try {
      handlers[method](call, () => {
        stream.respond(GRPC_HEADERS, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
        stream.end(EMPTY_MESSAGE);
      });
    } catch (err) { // `--decode full` and a message proto-loader cannot read
      refuse(stream, 13, String(err.message || err));
    }
  });
}

function bindHttp2(address, port, done) {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 10000 } });
  server.on('stream', onStream);
  server.on('sessionError', () => {});
  server.once('error', (err) => done(err));
  server.listen(port, address, () => done(null, server.address().port));
}

function bindGrpcJs(address, port, done) {
  const server = new grpc.Server({
    'grpc.max_concurrent_streams': 10000,
  });
  server.addService(definition, handlers);
  server.bindAsync(`${address}:${port}`, grpc.ServerCredentials.createInsecure(), done);
}

function writeOut() {
  if (args.out) fs.writeFileSync(args.out, JSON.stringify(snapshot()));
}

const control = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/stats') {
    const body = JSON.stringify(snapshot());
    if (url.searchParams.get('reset') === '1') reset();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  } else if (url.pathname === '/reset') {
    reset();
    res.writeHead(204);
    res.end();
  } else {
    res.writeHead(404);
    res.end();
  }
});

const bind = args.engine === 'http2' ? bindHttp2 : bindGrpcJs;
bind(args.host, args.port, (err, grpcPort) => {
  if (err) {
    process.stderr.write(`bind: ${err.message}\n`);
    process.exit(1);
  }
  control.listen(args.controlPort, args.host, () => {
    process.stdout.write(JSON.stringify({ grpc_port: grpcPort, control_port: control.address().port }) + '\n');
  });
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    try {
      writeOut();
    } finally {
      process.exit(0);
    }
  });
}
