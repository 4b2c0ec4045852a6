// Writes the expected outputs of tests/models/*/test_data_set_N/ with ONNX Runtime (onnxruntime-node).
//
//   node tests/models/ort_expected.mjs [MODEL_DIR...]      (default: every folder here with a model.onnx)
//
// onnxruntime-node is loaded from $PEERS_DIR or ./.peers (see README.md). Each input_K.pb is decoded,
// the model run, and output_K.pb written in the model's output order as an ONNX TensorProto (dims,
// data_type, name, raw_data) — the same encoding onnx.numpy_helper.from_array produces.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const peers = path.resolve(process.env.PEERS_DIR || '.peers');
let ort;
try {
  ort = createRequire(path.join(peers, 'package.json'))('onnxruntime-node');
} catch (e) {
  console.error(`onnxruntime-node not found under ${peers}/node_modules (${e.message}); see tests/models/README.md`);
  process.exit(2);
}

// ONNX TensorProto.DataType <-> onnxruntime-node tensor type, with the typed array that holds it.
const TYPES = [
  [1, 'float32', Float32Array], [2, 'uint8', Uint8Array], [3, 'int8', Int8Array], [4, 'uint16', Uint16Array],
  [5, 'int16', Int16Array], [6, 'int32', Int32Array], [7, 'int64', BigInt64Array], [9, 'bool', Uint8Array],
  [10, 'float16', Uint16Array], [11, 'float64', Float64Array], [12, 'uint32', Uint32Array],
  [13, 'uint64', BigUint64Array],
];
const BY_ONNX = new Map(TYPES.map(([code, type, Arr]) => [code, { type, Arr }]));
const BY_ORT = new Map(TYPES.map(([code, type, Arr]) => [type, { code, Arr }]));

// --- protobuf wire format: just what TensorProto needs ------------------------------------------------
function readVarint(buf, pos) {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [v, pos];
    shift += 7n;
  }
}

function decodeTensor(buf) {
  const t = { dims: [], dataType: 0, name: '', raw: null, floats: [], ints: [], doubles: [] };
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      let v;
      [v, pos] = readVarint(buf, pos);
      if (field === 1) t.dims.push(Number(BigInt.asIntN(64, v)));
      else if (field === 2) t.dataType = Number(v);
      else if (field === 5 || field === 7 || field === 11) t.ints.push(BigInt.asIntN(64, v));
    } else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const body = buf.subarray(pos, pos + Number(len));
      pos += Number(len);
      if (field === 8) t.name = body.toString('utf8');
      else if (field === 9) t.raw = body;
      else if (field === 4) for (let i = 0; i < body.length; i += 4) t.floats.push(body.readFloatLE(i));
      else if (field === 10) for (let i = 0; i < body.length; i += 8) t.doubles.push(body.readDoubleLE(i));
      else if (field === 1 || field === 5 || field === 7 || field === 11) {  // packed varints
        for (let p = 0; p < body.length;) {
          let v;
          [v, p] = readVarint(body, p);
          if (field === 1) t.dims.push(Number(BigInt.asIntN(64, v)));
          else t.ints.push(BigInt.asIntN(64, v));
        }
      }
    } else if (wire === 5) {
      if (field === 4) t.floats.push(buf.readFloatLE(pos));
      pos += 4;
    } else if (wire === 1) {
      if (field === 10) t.doubles.push(buf.readDoubleLE(pos));
      pos += 8;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
  return t;
}

function toOrtTensor(t) {
  const info = BY_ONNX.get(t.dataType);
  if (!info) throw new Error(`tensor '${t.name}': unsupported data type ${t.dataType}`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  let data;
  if (t.raw) {
    const bytes = Uint8Array.from(t.raw);  // aligned copy
    data = new info.Arr(bytes.buffer, 0, n);
  } else if (info.Arr === Float32Array) data = Float32Array.from(t.floats);
  else if (info.Arr === Float64Array) data = Float64Array.from(t.doubles);
  else if (info.Arr === BigInt64Array) data = BigInt64Array.from(t.ints);
  else if (info.Arr === BigUint64Array) data = BigUint64Array.from(t.ints.map((v) => BigInt.asUintN(64, v)));
  else data = info.Arr.from(t.ints.map(Number));
  if (data.length !== n) throw new Error(`tensor '${t.name}': ${data.length} elements for dims [${t.dims}]`);
  return new ort.Tensor(info.type, data, t.dims);
}

function varint(v) {
  let x = BigInt.asUintN(64, BigInt(v));
  const out = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    out.push(b);
  } while (x);
  return out;
}

function encodeTensor(name, tensor) {
  const info = BY_ORT.get(tensor.type);
  if (!info) throw new Error(`output '${name}': unsupported type ${tensor.type}`);
  const d = tensor.data;
  const raw = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  const nameBytes = Buffer.from(name, 'utf8');
  const parts = [];
  for (const dim of tensor.dims) parts.push(0x08, ...varint(dim));  // dims (field 1, unpacked as proto2)
  parts.push(0x10, ...varint(info.code));  // data_type (field 2)
  parts.push(0x42, ...varint(nameBytes.length));  // name (field 8)
  return Buffer.concat([Buffer.from(parts), nameBytes, Buffer.from([0x4a, ...varint(raw.length)]), raw]);
}

// --- run ------------------------------------------------------------------------------------------
function numbered(dir, prefix) {
  return fs.readdirSync(dir)
    .map((f) => [f, new RegExp(`^${prefix}(\\d+)(\\.pb)?$`).exec(f)])
    .filter(([, m]) => m)
    .sort((a, b) => Number(a[1][1]) - Number(b[1][1]))
    .map(([f]) => path.join(dir, f));
}

async function run(dir) {
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'),
    { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1, logSeverityLevel: 3 });
  const sets = numbered(dir, 'test_data_set_');
  for (const set of sets) {
    const feeds = {};
    numbered(set, 'input_').forEach((file, k) => {
      const t = decodeTensor(fs.readFileSync(file));
      feeds[t.name || session.inputNames[k]] = toOrtTensor(t);
    });
    const results = await session.run(feeds);
    for (const f of numbered(set, 'output_')) fs.unlinkSync(f);
    session.outputNames.forEach((name, k) => {
      fs.writeFileSync(path.join(set, `output_${k}.pb`), encodeTensor(name, results[name]));
    });
    const shapes = session.outputNames.map((n) => `${n}[${results[n].dims}]`).join(' ');
    console.log(`${path.basename(dir)}/${path.basename(set)}: ${shapes}`);
  }
}

const dirs = process.argv.length > 2 ? process.argv.slice(2)
  : fs.readdirSync(HERE).map((d) => path.join(HERE, d)).filter((d) => fs.existsSync(path.join(d, 'model.onnx')));
let failed = 0;
for (const dir of dirs.sort()) {
  try {
    await run(dir);
  } catch (e) {
    console.error(`${path.basename(dir)}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
