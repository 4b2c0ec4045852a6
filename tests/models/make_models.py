#!/usr/bin/python3
"""Builds small models in the style of PyTorch's ONNX exporter, with seeded random weights and inputs.

Writes tests/models/<name>/model.onnx and test_data_set_N/input_K.pb in the ONNX backend-test layout.
The expected outputs (output_K.pb) are written by ort_expected.mjs (ONNX Runtime), not here.
Run with Debian's python (python3-onnx, python3-numpy):  /usr/bin/python3 tests/models/make_models.py
"""
import itertools
import math
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
F32 = TensorProto.FLOAT
I64 = TensorProto.INT64
INT64_MIN = -9223372036854775807  # what the exporter writes for an open slice end with a negative step


class Graph:
    """Collects nodes and initializers with the exporter's naming: node '/scope/Op', output
    '/scope/Op_output_0', duplicate names numbered '/scope/Op_1', anonymous weights 'onnx::Op_123'."""

    def __init__(self, seed):
        self.nodes, self.inits, self.used = [], [], {}
        self.rng = np.random.default_rng(seed)
        self.anon = itertools.count(101)

    def _unique(self, base):
        n = self.used.get(base, 0)
        self.used[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def op(self, op_type, inputs, scope="", outputs=1, **attrs):
        name = self._unique(f"{scope}/{op_type}")
        if isinstance(outputs, int):
            outputs = [f"{name}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=name, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def const(self, value, scope="", dtype=None):
        arr = np.array(value, dtype=dtype if dtype is not None else
                       (np.int64 if np.asarray(value).dtype.kind in "iu" else np.float32))
        return self.op("Constant", [], scope, value=numpy_helper.from_array(arr))

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def anon_init(self, op_type, arr):
        return self.init(f"onnx::{op_type}_{next(self.anon)}", arr)

    def randn(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def uniform(self, lo, hi, *shape):
        return self.rng.uniform(lo, hi, shape).astype(np.float32)

    # --- layers as the exporter writes them ---------------------------------------------------------
    def conv(self, x, scope, prefix, cin, cout, k, stride=1, pad=0, dilation=1, groups=1, bias=True, dims=2):
        ks = [k] * dims
        fan_in = cin // groups * k ** dims
        w = self.init(f"{prefix}.weight", self.randn(cout, cin // groups, *ks, scale=math.sqrt(2.0 / fan_in)))
        ins = [x, w]
        if bias:
            ins.append(self.init(f"{prefix}.bias", self.randn(cout, scale=0.1)))
        return self.op("Conv", ins, scope, dilations=[dilation] * dims, group=groups, kernel_shape=ks,
                       pads=[pad] * (2 * dims), strides=[stride] * dims)

    def bn(self, x, scope, prefix, c):
        ins = [x, self.init(f"{prefix}.weight", self.uniform(0.5, 1.5, c)),
               self.init(f"{prefix}.bias", self.randn(c, scale=0.1)),
               self.init(f"{prefix}.running_mean", self.randn(c, scale=0.1)),
               self.init(f"{prefix}.running_var", self.uniform(0.5, 1.5, c))]
        return self.op("BatchNormalization", ins, scope, epsilon=1e-5, momentum=0.9)

    def gemm(self, x, scope, prefix, fin, fout):
        w = self.init(f"{prefix}.weight", self.randn(fout, fin, scale=1.0 / math.sqrt(fin)))
        b = self.init(f"{prefix}.bias", self.randn(fout, scale=0.1))
        return self.op("Gemm", [x, w, b], scope, alpha=1.0, beta=1.0, transB=1)

    def linear(self, x, scope, prefix, fin, fout):
        """nn.Linear on a 3-D input: MatMul with the transposed weight as an anonymous initializer, then Add."""
        w = self.anon_init("MatMul", self.randn(fin, fout, scale=1.0 / math.sqrt(fin)))
        b = self.init(f"{prefix}.bias", self.randn(fout, scale=0.1))
        m = self.op("MatMul", [x, w], scope)
        return self.op("Add", [b, m], scope)

    def dim(self, x, axis, scope):
        """x.size(axis) as a 1-D int64 tensor: Shape -> Gather -> Unsqueeze."""
        s = self.op("Shape", [x], scope)
        g = self.op("Gather", [s, self.const(axis, scope)], scope, axis=0)
        return self.op("Unsqueeze", [g, self.const([0], scope)], scope)


def value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def save(name, g, opset, inputs, outputs, data_sets, doc, extra_inputs=()):
    """Writes <name>/model.onnx and its data sets (list of {input name: array}). extra_inputs: graph
    inputs with an initializer (not fed by the data sets), as keep_initializers_as_inputs=True writes."""
    graph = helper.make_graph(g.nodes, "main_graph", inputs + list(extra_inputs), outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="pytorch", producer_version="1.8.0" if opset < 13 else "2.1.0",
                              doc_string=doc)
    model.ir_version = 6 if opset < 13 else 7 if opset == 13 else 8
    model = onnx.shape_inference.infer_shapes(model)  # the exporter also writes value_info
    onnx.checker.check_model(model, full_check=True)
    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    onnx.save(model, os.path.join(out, "model.onnx"))
    for n, ds in enumerate(data_sets):
        d = os.path.join(out, f"test_data_set_{n}")
        os.makedirs(d)
        for k, vi in enumerate(inputs):
            t = numpy_helper.from_array(ds[vi.name], vi.name)
            with open(os.path.join(d, f"input_{k}.pb"), "wb") as f:
                f.write(t.SerializeToString())
    print(f"{name}: {os.path.getsize(os.path.join(out, 'model.onnx'))} bytes, "
          f"ops {sorted({n.op_type for n in model.graph.node})}")


# ------------------------------------------------------------------------------------------------------
def cnn_resnet_block():
    g = Graph(1)
    x = g.conv("input", "/conv1", "conv1", 3, 8, 3, pad=1, bias=False)
    x = g.bn(x, "/bn1", "bn1", 8)
    x = g.op("Relu", [x], "/relu")
    x = g.op("MaxPool", [x], "/maxpool", ceil_mode=0, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    # layer1.0: basic block with identity shortcut
    s = "/layer1/layer1.0"
    y = g.conv(x, f"{s}/conv1", "layer1.0.conv1", 8, 8, 3, pad=1, bias=False)
    y = g.bn(y, f"{s}/bn1", "layer1.0.bn1", 8)
    y = g.op("Relu", [y], f"{s}/relu")
    y = g.conv(y, f"{s}/conv2", "layer1.0.conv2", 8, 8, 3, pad=1, bias=False)
    y = g.bn(y, f"{s}/bn2", "layer1.0.bn2", 8)
    x = g.op("Relu", [g.op("Add", [y, x], s)], f"{s}/relu_1")
    # layer2.0: strided block with a 1x1 downsample shortcut
    s = "/layer2/layer2.0"
    y = g.conv(x, f"{s}/conv1", "layer2.0.conv1", 8, 16, 3, stride=2, pad=1, bias=False)
    y = g.bn(y, f"{s}/bn1", "layer2.0.bn1", 16)
    y = g.op("Relu", [y], f"{s}/relu")
    y = g.conv(y, f"{s}/conv2", "layer2.0.conv2", 16, 16, 3, pad=1, bias=False)
    y = g.bn(y, f"{s}/bn2", "layer2.0.bn2", 16)
    d = g.conv(x, f"{s}/downsample/downsample.0", "layer2.0.downsample.0", 8, 16, 1, stride=2, bias=False)
    d = g.bn(d, f"{s}/downsample/downsample.1", "layer2.0.downsample.1", 16)
    x = g.op("Relu", [g.op("Add", [y, d], s)], f"{s}/relu_1")
    x = g.op("GlobalAveragePool", [x], "/avgpool")
    x = g.op("Flatten", [x], "", axis=1)
    g.op("Gemm", [x, g.init("fc.weight", g.randn(10, 16, scale=0.25)), g.init("fc.bias", g.randn(10, scale=0.1))],
         "/fc", outputs=["output"], alpha=1.0, beta=1.0, transB=1)
    r = np.random.default_rng(11)
    save("cnn_resnet_block", g, 13,
         [value("input", F32, ["batch_size", 3, 16, 16])], [value("output", F32, ["batch_size", 10])],
         [{"input": r.standard_normal((2, 3, 16, 16)).astype(np.float32)},
          {"input": r.standard_normal((1, 3, 16, 16)).astype(np.float32)}],
         "ResNet basic blocks: Conv/BatchNormalization/Relu, residual Add, MaxPool, GlobalAveragePool, Flatten, Gemm")


# ------------------------------------------------------------------------------------------------------
D, HEADS, DH, FFN, VOCAB, MAXPOS = 16, 2, 8, 32, 40, 16


def layer_norm(g, x, scope, prefix, use_op):
    w = g.init(f"{prefix}.weight", g.uniform(0.8, 1.2, D))
    b = g.init(f"{prefix}.bias", g.randn(D, scale=0.1))
    if use_op:
        return g.op("LayerNormalization", [x, w, b], scope, axis=-1, epsilon=1e-12)
    # what the exporter writes below opset 17
    m = g.op("ReduceMean", [x], scope, axes=[-1], keepdims=1)
    d = g.op("Sub", [x, m], scope)
    p = g.op("Pow", [d, g.const(2.0, scope)], scope)
    v = g.op("ReduceMean", [p], scope, axes=[-1], keepdims=1)
    v = g.op("Add", [v, g.const(1e-5, scope)], scope)
    n = g.op("Div", [d, g.op("Sqrt", [v], scope)], scope)
    return g.op("Add", [g.op("Mul", [n, w], scope), b], scope)


def split_heads(g, x, scope, perm):
    """view(b, s, heads, dh) with the shape built from Shape/Gather/Unsqueeze/Concat, then permute."""
    shape = g.op("Concat", [g.dim(x, 0, scope), g.dim(x, 1, scope), g.const([HEADS], scope), g.const([DH], scope)],
                 scope, axis=0)
    x = g.op("Reshape", [x, shape], scope)
    return g.op("Transpose", [x], scope, perm=perm)


def attention(g, x, mask_add, causal, scope, prefix):
    q = g.linear(x, f"{scope}/query", f"{prefix}.query", D, D)
    k = g.linear(x, f"{scope}/key", f"{prefix}.key", D, D)
    v = g.linear(x, f"{scope}/value", f"{prefix}.value", D, D)
    q = split_heads(g, q, scope, [0, 2, 1, 3])
    k = split_heads(g, k, scope, [0, 2, 3, 1])
    v = split_heads(g, v, scope, [0, 2, 1, 3])
    s = g.op("Div", [g.op("MatMul", [q, k], scope), g.const(math.sqrt(DH), scope)], scope)
    if causal is not None:
        s = g.op("Where", [causal, s, g.const(np.finfo(np.float32).min, scope)], scope)
    s = g.op("Add", [s, mask_add], scope)
    p = g.op("Softmax", [s], scope, axis=-1)
    c = g.op("Transpose", [g.op("MatMul", [p, v], scope)], scope, perm=[0, 2, 1, 3])
    shape = g.op("Concat", [g.dim(c, 0, scope), g.dim(c, 1, scope), g.const([D], scope)], scope, axis=0)
    return g.op("Reshape", [c, shape], scope)


def gelu_erf(g, x, scope):
    e = g.op("Erf", [g.op("Div", [x, g.const(1.4142135381698608, scope)], scope)], scope)
    y = g.op("Mul", [x, g.op("Add", [e, g.const(1.0, scope)], scope)], scope)
    return g.op("Mul", [y, g.const(0.5, scope)], scope)


def gelu_tanh(g, x, scope):
    """GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    x3 = g.op("Pow", [x, g.const(3.0, scope)], scope)
    t = g.op("Add", [x, g.op("Mul", [g.const(0.044715, scope), x3], scope)], scope)
    t = g.op("Tanh", [g.op("Mul", [g.const(math.sqrt(2 / math.pi), scope), t], scope)], scope)
    y = g.op("Mul", [g.op("Mul", [g.const(0.5, scope), x], scope), g.op("Add", [g.const(1.0, scope), t], scope)],
             scope)
    return y


def token_data(seed, shapes):
    """(batch, seq, valid lengths) -> input_ids, attention_mask with right padding."""
    r = np.random.default_rng(seed)
    sets = []
    for b, s, lens in shapes:
        ids = r.integers(1, VOCAB, (b, s)).astype(np.int64)
        mask = (np.arange(s)[None, :] < np.array(lens)[:, None]).astype(np.int64)
        ids[mask == 0] = 0
        sets.append({"input_ids": ids, "attention_mask": mask})
    return sets


def transformer_encoder_ln():
    """BERT style, opset 17: LayerNormalization op, position_ids buffer sliced to the sequence length,
    (1 - mask) * -10000 additive mask, GELU with Erf, post-LN, pooler Gather/Gemm/Tanh."""
    g = Graph(2)
    s = "/embeddings"
    x = g.op("Gather", [g.init("embeddings.word_embeddings.weight", g.randn(VOCAB, D)), "input_ids"],
             f"{s}/word_embeddings")
    pos_ids = g.init("embeddings.position_ids", np.arange(MAXPOS, dtype=np.int64)[None, :])
    seq = g.dim("input_ids", 1, s)
    pos = g.op("Slice", [pos_ids, g.const([0], s), seq, g.const([1], s), g.const([1], s)], s)
    pe = g.op("Gather", [g.init("embeddings.position_embeddings.weight", g.randn(MAXPOS, D, scale=0.5)), pos],
              f"{s}/position_embeddings")
    x = g.op("Add", [x, pe], s)
    x = layer_norm(g, x, f"{s}/LayerNorm", "embeddings.LayerNorm", True)
    m = g.op("Unsqueeze", ["attention_mask", g.const([1], "")], "")
    m = g.op("Unsqueeze", [m, g.const([2], "")], "")
    m = g.op("Cast", [m], "", to=F32)
    m = g.op("Sub", [g.const(1.0, ""), m], "")
    m = g.op("Mul", [m, g.const(-10000.0, "")], "")
    for i in range(2):
        s, p = f"/encoder/layer.{i}", f"encoder.layer.{i}"
        a = attention(g, x, m, None, f"{s}/attention/self", f"{p}.attention.self")
        a = g.linear(a, f"{s}/attention/output/dense", f"{p}.attention.output.dense", D, D)
        x = layer_norm(g, g.op("Add", [a, x], f"{s}/attention/output"), f"{s}/attention/output/LayerNorm",
                       f"{p}.attention.output.LayerNorm", True)
        h = g.linear(x, f"{s}/intermediate/dense", f"{p}.intermediate.dense", D, FFN)
        h = gelu_erf(g, h, f"{s}/intermediate/intermediate_act_fn")
        h = g.linear(h, f"{s}/output/dense", f"{p}.output.dense", FFN, D)
        x = layer_norm(g, g.op("Add", [h, x], f"{s}/output"), f"{s}/output/LayerNorm", f"{p}.output.LayerNorm", True)
    g.nodes[-1].output[0] = "last_hidden_state"
    x = "last_hidden_state"
    first = g.op("Gather", [x, g.const(0, "/pooler")], "/pooler", axis=1)
    g.op("Tanh", [g.gemm(first, "/pooler/dense", "pooler.dense", D, D)], "/pooler/activation",
         outputs=["pooler_output"])
    save("transformer_encoder_ln", g, 17,
         [value("input_ids", I64, ["batch_size", "sequence_length"]),
          value("attention_mask", I64, ["batch_size", "sequence_length"])],
         [value("last_hidden_state", F32, ["batch_size", "sequence_length", D]),
          value("pooler_output", F32, ["batch_size", D])],
         token_data(21, [(2, 6, [6, 4]), (3, 9, [9, 2, 7])]),
         "BERT-style encoder, opset 17 LayerNormalization, additive -10000 attention mask")


def transformer_encoder_decomposed():
    """GPT-2 style, opset 14: LayerNorm decomposed into ReduceMean/Sub/Pow/Sqrt/Div, position ids from
    Range, pre-LN blocks, causal bool buffer sliced to the sequence length + Where, padding mask turned
    into a -inf additive mask with Cast(bool)/Not/Where, tanh-form GELU."""
    g = Graph(3)
    x = g.op("Gather", [g.init("wte.weight", g.randn(VOCAB, D)), "input_ids"], "/wte")
    seq = g.op("Gather", [g.op("Shape", ["input_ids"], ""), g.const(1, "")], "", axis=0)
    pos = g.op("Range", [g.const(0, ""), seq, g.const(1, "")], "")
    pos = g.op("Unsqueeze", [pos, g.const([0], "")], "")
    x = g.op("Add", [x, g.op("Gather", [g.init("wpe.weight", g.randn(MAXPOS, D, scale=0.5)), pos], "/wpe")], "")
    pad = g.op("Not", [g.op("Cast", ["attention_mask"], "", to=TensorProto.BOOL)], "")
    pad = g.op("Unsqueeze", [pad, g.const([1, 2], "")], "")
    m = g.op("Where", [pad, g.const(float("-inf"), ""), g.const(0.0, "")], "")
    tril = np.tril(np.ones((MAXPOS, MAXPOS), dtype=bool))[None, None]
    bias = g.init("h.0.attn.bias", tril)
    seq1 = g.op("Unsqueeze", [seq, g.const([0], "")], "")
    causal = g.op("Slice", [bias, g.const([0, 0], ""), g.op("Concat", [seq1, seq1], "", axis=0),
                            g.const([2, 3], "")], "")
    for i in range(2):
        s, p = f"/h.{i}", f"h.{i}"
        a = layer_norm(g, x, f"{s}/ln_1", f"{p}.ln_1", False)
        a = attention(g, a, m, causal, f"{s}/attn", f"{p}.attn")
        a = g.linear(a, f"{s}/attn/c_proj", f"{p}.attn.c_proj", D, D)
        x = g.op("Add", [a, x], s)
        h = layer_norm(g, x, f"{s}/ln_2", f"{p}.ln_2", False)
        h = g.linear(h, f"{s}/mlp/c_fc", f"{p}.mlp.c_fc", D, FFN)
        h = gelu_tanh(g, h, f"{s}/mlp/act")
        h = g.linear(h, f"{s}/mlp/c_proj", f"{p}.mlp.c_proj", FFN, D)
        x = g.op("Add", [h, x], s)
    x = layer_norm(g, x, "/ln_f", "ln_f", False)
    g.nodes[-1].output[0] = "last_hidden_state"
    save("transformer_encoder_decomposed", g, 14,
         [value("input_ids", I64, ["batch_size", "sequence_length"]),
          value("attention_mask", I64, ["batch_size", "sequence_length"])],
         [value("last_hidden_state", F32, ["batch_size", "sequence_length", D])],
         token_data(31, [(2, 7, [7, 3]), (1, 12, [10])]),
         "GPT-2-style blocks, decomposed LayerNorm, causal Where mask and -inf padding mask")


# ------------------------------------------------------------------------------------------------------
def rnn_weights(g, op, gates, fin, hidden, dirs):
    w = g.anon_init(op, g.randn(dirs, gates * hidden, fin, scale=1.0 / math.sqrt(hidden)))
    r = g.anon_init(op, g.randn(dirs, gates * hidden, hidden, scale=1.0 / math.sqrt(hidden)))
    b = g.anon_init(op, g.randn(dirs, 2 * gates * hidden, scale=0.1))
    return w, r, b


def zeros_state(g, x, dirs, hidden, scope):
    """h0 = zeros(dirs, batch, hidden) for a dynamic batch: Shape/Gather/Unsqueeze/Concat/ConstantOfShape."""
    shape = g.op("Concat", [g.const([dirs], scope), g.dim(x, 0, scope), g.const([hidden], scope)], scope, axis=0)
    return g.op("ConstantOfShape", [shape], scope, value=numpy_helper.from_array(np.zeros(1, np.float32)))


def seq_data(seed, shapes, feat, lengths=False):
    r = np.random.default_rng(seed)
    sets = []
    for b, s, lens in shapes:
        ds = {"input": r.standard_normal((b, s, feat)).astype(np.float32)}
        if lengths:
            ds["lengths"] = np.array(lens, dtype=np.int64)
        sets.append(ds)
    return sets


def lstm_classifier():
    """2-layer bidirectional LSTM (batch_first), directions merged by Transpose/Reshape, final states of
    both directions Gather/Concat into a Gemm head."""
    g = Graph(4)
    H = 8
    x = g.op("Transpose", ["input"], "/lstm", perm=[1, 0, 2])
    h0 = zeros_state(g, "input", 2, H, "/lstm")
    fin = 6
    for layer in range(2):
        w, r, b = rnn_weights(g, "LSTM", 4, fin, H, 2)
        y, yh, _ = g.op("LSTM", [x, w, r, b, "", h0, h0], "/lstm", outputs=3, direction="bidirectional",
                        hidden_size=H)
        y = g.op("Transpose", [y], "/lstm", perm=[0, 2, 1, 3])
        x = g.op("Reshape", [y, g.const([0, 0, -1], "/lstm")], "/lstm")
        fin = 2 * H
    g.op("Transpose", [x], "", perm=[1, 0, 2], outputs=["features"])
    fwd = g.op("Gather", [yh, g.const(0, "")], "", axis=0)
    bwd = g.op("Gather", [yh, g.const(1, "")], "", axis=0)
    cat = g.op("Concat", [fwd, bwd], "", axis=1)
    g.op("Gemm", [cat, g.init("fc.weight", g.randn(3, 2 * H, scale=0.3)), g.init("fc.bias", g.randn(3, scale=0.1))],
         "/fc", outputs=["logits"], alpha=1.0, beta=1.0, transB=1)
    save("lstm_classifier", g, 14,
         [value("input", F32, ["batch_size", "sequence_length", 6])],
         [value("logits", F32, ["batch_size", 3]), value("features", F32, ["batch_size", "sequence_length", 2 * H])],
         seq_data(41, [(2, 5, None), (3, 8, None)], 6),
         "2-layer bidirectional LSTM, zero initial state built from the dynamic batch, Gemm head")


def lstm_packed():
    """pack_padded_sequence: bidirectional LSTM with sequence_lens (Cast int64 -> int32) and given
    initial states; padded steps of Y must be zero."""
    g = Graph(5)
    H = 8
    x = g.op("Transpose", ["input"], "/lstm", perm=[1, 0, 2])
    lens = g.op("Cast", ["lengths"], "/lstm", to=TensorProto.INT32)
    w, r, b = rnn_weights(g, "LSTM", 4, 5, H, 2)
    h0 = g.op("Expand", [g.init("h0", g.randn(2, 1, H, scale=0.5)),
                         g.op("Concat", [g.const([2], ""), g.dim("input", 0, ""), g.const([H], "")], "", axis=0)], "")
    c0 = g.op("Expand", [g.init("c0", g.randn(2, 1, H, scale=0.5)),
                         g.op("Concat", [g.const([2], ""), g.dim("input", 0, ""), g.const([H], "")], "", axis=0)], "")
    y, yh, yc = g.op("LSTM", [x, w, r, b, lens, h0, c0], "/lstm", outputs=3, direction="bidirectional", hidden_size=H)
    y = g.op("Transpose", [y], "/lstm", perm=[2, 0, 1, 3])  # [batch, seq, dirs, hidden]
    g.op("Reshape", [y, g.const([0, 0, -1], "")], "", outputs=["output"])
    hc = g.op("Concat", [yh, yc], "", axis=2)  # [2, batch, 2H]
    hc = g.op("Transpose", [hc], "", perm=[1, 0, 2])
    hc = g.op("Flatten", [hc], "", axis=1)
    g.op("Gemm", [hc, g.init("fc.weight", g.randn(4, 4 * H, scale=0.2)), g.init("fc.bias", g.randn(4, scale=0.1))],
         "/fc", outputs=["logits"], alpha=1.0, beta=1.0, transB=1)
    save("lstm_packed", g, 14,
         [value("input", F32, ["batch_size", "sequence_length", 5]), value("lengths", I64, ["batch_size"])],
         [value("output", F32, ["batch_size", "sequence_length", 2 * H]), value("logits", F32, ["batch_size", 4])],
         seq_data(51, [(3, 6, [6, 3, 1]), (2, 4, [2, 4])], 5, lengths=True),
         "bidirectional LSTM with sequence_lens and learned initial states")


def gru_classifier():
    """Bidirectional GRU (linear_before_reset=1, as PyTorch exports) into a forward GRU whose Y and Y_h
    are Squeezed, Gemm head."""
    g = Graph(6)
    H = 8
    x = g.op("Transpose", ["input"], "/gru", perm=[1, 0, 2])
    w, r, b = rnn_weights(g, "GRU", 3, 6, H, 2)
    y, _ = g.op("GRU", [x, w, r, b, "", zeros_state(g, "input", 2, H, "/gru")], "/gru", outputs=2,
                direction="bidirectional", hidden_size=H, linear_before_reset=1)
    y = g.op("Reshape", [g.op("Transpose", [y], "/gru", perm=[0, 2, 1, 3]), g.const([0, 0, -1], "/gru")], "/gru")
    w, r, b = rnn_weights(g, "GRU", 3, 2 * H, H, 1)
    y2, yh2 = g.op("GRU", [y, w, r, b, "", zeros_state(g, "input", 1, H, "/gru2")], "/gru2", outputs=2,
                   direction="forward", hidden_size=H, linear_before_reset=1)
    y2 = g.op("Squeeze", [y2, g.const([1], "/gru2")], "/gru2")
    g.op("Transpose", [y2], "", perm=[1, 0, 2], outputs=["features"])
    h = g.op("Squeeze", [yh2, g.const([0], "")], "")
    g.op("Gemm", [h, g.init("fc.weight", g.randn(3, H, scale=0.4)), g.init("fc.bias", g.randn(3, scale=0.1))],
         "/fc", outputs=["logits"], alpha=1.0, beta=1.0, transB=1)
    save("gru_classifier", g, 14,
         [value("input", F32, ["batch_size", "sequence_length", 6])],
         [value("logits", F32, ["batch_size", 3]), value("features", F32, ["batch_size", "sequence_length", H])],
         seq_data(61, [(2, 5, None), (1, 9, None)], 6),
         "bidirectional GRU then forward GRU, linear_before_reset=1, Squeeze of Y/Y_h")


# ------------------------------------------------------------------------------------------------------
def conv1d_audio():
    g = Graph(7)
    x = g.op("Pad", ["waveform", g.const([0, 0, 2, 0, 0, 2], "/pad"), g.const(0.0, "/pad")], "/pad", mode="reflect")
    x = g.conv(x, "/conv1", "conv1", 1, 8, 5, stride=2, dims=1)
    x = g.op("Relu", [g.bn(x, "/bn1", "bn1", 8)], "/act1")
    x = g.conv(x, "/conv2", "conv2", 8, 8, 3, pad=2, dilation=2, groups=4, dims=1)
    x = g.op("LeakyRelu", [g.bn(x, "/bn2", "bn2", 8)], "/act2", alpha=0.1)
    x = g.op("MaxPool", [x], "/pool1", ceil_mode=1, kernel_shape=[2], pads=[0, 0], strides=[2])
    x = g.conv(x, "/conv3", "conv3", 8, 16, 3, pad=1, groups=8, dims=1)
    x = g.op("Relu", [x], "/act3")
    x = g.conv(x, "/conv4", "conv4", 16, 16, 1, dims=1)
    x = g.op("AveragePool", [x], "/pool2", ceil_mode=0, count_include_pad=1, kernel_shape=[3], pads=[1, 1],
             strides=[1])
    x = g.op("AveragePool", [x], "/pool3", ceil_mode=0, kernel_shape=[2], pads=[0, 0], strides=[2])
    x = g.op("ReduceMean", [x], "", axes=[2], keepdims=0)
    g.gemm(x, "/fc", "fc", 16, 4)
    g.nodes[-1].output[0] = "logits"
    r = np.random.default_rng(71)
    save("conv1d_audio", g, 13,
         [value("waveform", F32, ["batch_size", 1, "time"])], [value("logits", F32, ["batch_size", 4])],
         [{"waveform": r.standard_normal((2, 1, 64)).astype(np.float32)},
          {"waveform": r.standard_normal((1, 1, 37)).astype(np.float32)}],
         "1-D conv stack: reflect Pad, strided/dilated/grouped Conv, BatchNorm, LeakyRelu, ceil-mode MaxPool, "
         "AveragePool with padding, ReduceMean over time")


def unet_small():
    """Encoder/decoder with skip connections: MaxPool down, ConvTranspose (stride 2, output_padding) and
    Resize nearest (scales) up, a bilinear Resize (pytorch_half_pixel) to sizes taken from another tensor's
    Shape, channel Concat, Sigmoid; batch, height and width symbolic."""
    g = Graph(8)
    e1 = g.op("Relu", [g.conv("input", "/enc1", "enc1", 1, 4, 3, pad=1)], "/enc1")
    e2 = g.op("MaxPool", [e1], "/down1", kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    e2 = g.op("Relu", [g.conv(e2, "/enc2", "enc2", 4, 8, 3, pad=1)], "/enc2")
    b = g.op("MaxPool", [e2], "/down2", kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    b = g.op("Relu", [g.conv(b, "/bottleneck", "bottleneck", 8, 8, 3, pad=1)], "/bottleneck")
    u = g.op("ConvTranspose", [b, g.init("up1.weight", g.randn(8, 8, 3, 3, scale=0.3)),
                               g.init("up1.bias", g.randn(8, scale=0.1))], "/up1",
             dilations=[1, 1], group=1, kernel_shape=[3, 3], output_padding=[1, 1], pads=[1, 1, 1, 1], strides=[2, 2])
    u = g.op("Concat", [u, e2], "", axis=1)
    u = g.op("Relu", [g.conv(u, "/dec1", "dec1", 16, 8, 3, pad=1)], "/dec1")
    u = g.op("Resize", [u, "", g.const([1.0, 1.0, 2.0, 2.0], "/up2")], "/up2", coordinate_transformation_mode="asymmetric",
             cubic_coeff_a=-0.75, mode="nearest", nearest_mode="floor")
    u = g.op("Concat", [u, e1], "", axis=1)
    u = g.op("Relu", [g.conv(u, "/dec2", "dec2", 12, 4, 3, pad=1)], "/dec2")
    # auxiliary path: F.interpolate(bottleneck, size=input.shape[2:], mode="bilinear", align_corners=False)
    s = "/aux"
    sizes = g.op("Concat", [
        g.op("Slice", [g.op("Shape", [b], s), g.const([0], s), g.const([2], s), g.const([0], s)], s),
        g.op("Slice", [g.op("Shape", ["input"], s), g.const([2], s), g.const([4], s), g.const([0], s)], s)], s, axis=0)
    a = g.op("Resize", [b, "", "", sizes], s, coordinate_transformation_mode="pytorch_half_pixel",
             cubic_coeff_a=-0.75, mode="linear", nearest_mode="floor")
    a = g.conv(a, "/aux", "aux", 8, 4, 1)
    u = g.op("Add", [u, a], "")
    u = g.conv(u, "/head", "head", 4, 1, 1)
    g.op("Sigmoid", [u], "", outputs=["mask"])
    r = np.random.default_rng(81)
    save("unet_small", g, 13,
         [value("input", F32, ["batch_size", 1, "height", "width"])],
         [value("mask", F32, ["batch_size", 1, "height", "width"])],
         [{"input": r.standard_normal((1, 1, 16, 16)).astype(np.float32)},
          {"input": r.standard_normal((2, 1, 12, 20)).astype(np.float32)}],
         "small UNet: MaxPool, ConvTranspose, Resize nearest and bilinear, skip Concat")


def misc_exported_ops():
    """Idioms the exporter produces around the layers: Split with split sizes as an input, a class token
    expanded to the dynamic batch (Expand of Where(Equal(shape, -1), 1, shape)), Slice with ends computed
    from Shape, a flip (Slice with step -1), Range/Cast positions, CumSum, Clip with min/max inputs,
    F.normalize (ReduceL2/Clip/Expand/Div), Tile, Einsum, TopK, ArgMax, Where on a comparison."""
    g = Graph(9)
    a, b, c = g.op("Split", ["x", g.const([4, 4, 4], "")], "", outputs=3, axis=2)
    batch = g.dim("x", 0, "")
    shape = g.op("Concat", [batch, g.const([-1], ""), g.const([-1], "")], "", axis=0)
    shape = g.op("Where", [g.op("Equal", [shape, g.const(-1, "")], ""), g.const([1, 1, 1], ""), shape], "")
    cls = g.op("Expand", [g.init("cls_token", g.randn(1, 1, 4)), shape], "")
    a = g.op("Concat", [cls, a], "", axis=1)  # [b, s+1, 4]
    seq = g.op("Gather", [g.op("Shape", [a], ""), g.const(1, "")], "", axis=0)
    end = g.op("Unsqueeze", [g.op("Sub", [seq, g.const(1, "")], ""), g.const([0], "")], "")
    a = g.op("Slice", [a, g.const([0], ""), end, g.const([1], "")], "")  # a[:, :a.size(1) - 1]
    a = g.op("Add", [a, g.op("Slice", [b, g.const([-1], ""), g.const([INT64_MIN], ""), g.const([1], ""),
                                       g.const([-1], "")], "")], "")  # + b.flip(1)
    pos = g.op("Cast", [g.op("Range", [g.const(0, ""), g.op("Gather", [g.op("Shape", ["x"], ""), g.const(1, "")], "",
                                                                   axis=0), g.const(1, "")], "")], "", to=F32)
    pos = g.op("Unsqueeze", [g.op("Mul", [pos, g.const(0.1, "")], ""), g.const([0, 2], "")], "")
    c = g.op("CumSum", [g.op("Add", [c, pos], ""), g.const(1, "")], "")
    c = g.op("Clip", [c, g.const(-2.0, ""), g.const(2.5, "")], "")
    n = g.op("Clip", [g.op("ReduceL2", [c], "", axes=[-1], keepdims=1), g.const(1e-12, "")], "")
    n = g.op("Expand", [n, g.op("Shape", [c], "")], "")
    c = g.op("Div", [c, n], "")
    c = g.op("Where", [g.op("Greater", [c, g.const(0.0, "")], ""), c, g.op("Mul", [c, g.const(0.2, "")], "")], "")
    feats = g.op("Concat", [a, c], "", axis=2)  # [b, s, 8]
    g.op("Tile", [feats, g.const([1, 1, 2], "")], "", outputs=["tiled"])
    g.op("Einsum", [feats, feats], "", outputs=["gram"], equation="bid,bjd->bij")
    g.op("TopK", [feats, g.const([3], "")], "", outputs=["top_values", "top_indices"], axis=-1, largest=1, sorted=1)
    g.op("ArgMax", ["x"], "", outputs=["argmax"], axis=-1, keepdims=0, select_last_index=0)
    r = np.random.default_rng(91)
    save("misc_exported_ops", g, 13,
         [value("x", F32, ["batch_size", "sequence_length", 12])],
         [value("tiled", F32, ["batch_size", "sequence_length", 16]),
          value("gram", F32, ["batch_size", "sequence_length", "sequence_length"]),
          value("top_values", F32, ["batch_size", "sequence_length", 3]),
          value("top_indices", I64, ["batch_size", "sequence_length", 3]),
          value("argmax", I64, ["batch_size", "sequence_length"])],
         [{"x": r.standard_normal((2, 5, 12)).astype(np.float32)},
          {"x": r.standard_normal((3, 3, 12)).astype(np.float32)}],
         "exporter idioms: Split, Expand(-1), dynamic Slice, flip, Range, CumSum, Clip, ReduceL2, Tile, Einsum, TopK")


def mlp_legacy_export():
    """What older exporters wrote (opset 11, IR 6, keep_initializers_as_inputs=True): every initializer
    is also a graph input, Identity for an aliased tensor, opset-11 attribute forms (Unsqueeze/Squeeze/
    Split/ReduceSum axes as attributes), Clip min/max inputs, LogSoftmax."""
    g = Graph(10)
    x = g.gemm("input", "/fc1", "fc1", 20, 16)
    x = g.op("Relu", [x], "/relu")
    x = g.op("Identity", [x], "")
    h = g.op("Clip", [x, g.const(0.0, ""), g.const(6.0, "")], "")
    a, b = g.op("Split", [h], "", outputs=2, axis=1, split=[10, 6])
    b = g.op("Squeeze", [g.op("Unsqueeze", [b], "", axes=[1])], "", axes=[1])
    s = g.op("ReduceSum", [b], "", axes=[1], keepdims=1)
    a = g.op("Mul", [a, g.op("Sigmoid", [s], "")], "")
    x = g.gemm(a, "/fc2", "fc2", 10, 5)
    g.op("LogSoftmax", [x], "", outputs=["log_probs"], axis=1)
    r = np.random.default_rng(101)
    inputs = [value("input", F32, ["batch_size", 20])]
    inputs += [value(t.name, t.data_type, list(t.dims)) for t in g.inits]
    data = [{"input": r.standard_normal((4, 20)).astype(np.float32)},
            {"input": r.standard_normal((1, 20)).astype(np.float32)}]
    save("mlp_legacy_export", g, 11, inputs[:1], [value("log_probs", F32, ["batch_size", 5])], data,
         "opset 11 MLP with initializers listed as graph inputs", extra_inputs=inputs[1:])


def mobilenet_v3_block():
    """MobileNetV2/V3 pieces at sizes past the GEMM block sizes: stem Conv stride 2 with HardSwish,
    inverted residual (1x1 expand, depthwise 3x3 stride 2, squeeze-excite GlobalAveragePool/Conv/Relu/
    Conv/HardSigmoid/Mul, 1x1 project), ReLU6 as Clip(0, 6), a 3x3 Conv with 32 input channels (im2col
    K = 288), residual Add, head."""
    g = Graph(11)
    x = g.conv("input", "/features/features.0/features.0.0", "features.0.0", 3, 16, 3, stride=2, pad=1, bias=False)
    x = g.bn(x, "/features/features.0/features.0.1", "features.0.1", 16)
    x = g.op("HardSwish", [x], "/features/features.0/features.0.2")
    s, p = "/features/features.1/block", "features.1.block"
    y = g.conv(x, f"{s}/block.0/block.0.0", f"{p}.0.0", 16, 64, 1, bias=False)
    y = g.op("Clip", [g.bn(y, f"{s}/block.0/block.0.1", f"{p}.0.1", 64), g.const(0.0, s), g.const(6.0, s)],
             f"{s}/block.0/block.0.2")
    y = g.conv(y, f"{s}/block.1/block.1.0", f"{p}.1.0", 64, 64, 3, stride=2, pad=1, groups=64, bias=False)
    y = g.op("HardSwish", [g.bn(y, f"{s}/block.1/block.1.1", f"{p}.1.1", 64)], f"{s}/block.1/block.1.2")
    se = g.op("GlobalAveragePool", [y], f"{s}/block.2/avgpool")
    se = g.op("Relu", [g.conv(se, f"{s}/block.2/fc1", f"{p}.2.fc1", 64, 16, 1)], f"{s}/block.2/relu")
    se = g.op("HardSigmoid", [g.conv(se, f"{s}/block.2/fc2", f"{p}.2.fc2", 16, 64, 1)], f"{s}/block.2/scale_activation",
              alpha=1.0 / 6, beta=0.5)
    y = g.op("Mul", [se, y], f"{s}/block.2")
    y = g.conv(y, f"{s}/block.3/block.3.0", f"{p}.3.0", 64, 32, 1, bias=False)
    x = g.bn(y, f"{s}/block.3/block.3.1", f"{p}.3.1", 32)
    s = "/features/features.2"
    y = g.conv(x, f"{s}/conv", "features.2.conv", 32, 32, 3, pad=1)
    y = g.op("Clip", [y, g.const(0.0, s), g.const(6.0, s)], s)
    x = g.op("Add", [x, y], s)
    x = g.op("GlobalAveragePool", [x], "/avgpool")
    x = g.op("Flatten", [x], "", axis=1)
    x = g.op("HardSwish", [g.gemm(x, "/classifier/classifier.0", "classifier.0", 32, 24)], "/classifier/classifier.1")
    g.gemm(x, "/classifier/classifier.3", "classifier.3", 24, 10)
    g.nodes[-1].output[0] = "logits"
    r = np.random.default_rng(111)
    save("mobilenet_v3_block", g, 14,
         [value("input", F32, ["batch_size", 3, 32, 32])], [value("logits", F32, ["batch_size", 10])],
         [{"input": r.standard_normal((2, 3, 32, 32)).astype(np.float32)},
          {"input": r.standard_normal((1, 3, 32, 32)).astype(np.float32)}],
         "MobileNetV3-style block: HardSwish, depthwise Conv, squeeze-excite, ReLU6 Clip")


def wide_mlp():
    """Token-wise MLP with dims past the GEMM blocking (N = 520 > NC, K = 520 > KC, N = 40 not a multiple of
    the register tile, M = batch*seq = 300 rows) and a 1-wide output projection (matrix-vector path)."""
    g = Graph(12)
    x = g.linear("input", "/mlp/fc1", "mlp.fc1", 24, 520)
    x = gelu_erf(g, x, "/mlp/act")
    x = g.linear(x, "/mlp/fc2", "mlp.fc2", 520, 40)
    x = g.op("Relu", [x], "/mlp/relu")
    x = g.linear(x, "/score", "score", 40, 1)
    g.nodes[-1].output[0] = "scores"
    r = np.random.default_rng(121)
    save("wide_mlp", g, 13,
         [value("input", F32, ["batch_size", "sequence_length", 24])],
         [value("scores", F32, ["batch_size", "sequence_length", 1])],
         [{"input": r.standard_normal((2, 150, 24)).astype(np.float32)},
          {"input": r.standard_normal((1, 37, 24)).astype(np.float32)}],
         "MatMul sizes past the GEMM block sizes, N = 1 projection")


MODELS = [cnn_resnet_block, transformer_encoder_ln, transformer_encoder_decomposed, lstm_classifier, lstm_packed,
          gru_classifier, conv1d_audio, unet_small, misc_exported_ops, mlp_legacy_export,
          mobilenet_v3_block, wide_mlp]

if __name__ == "__main__":
    wanted = set(sys.argv[1:])
    for fn in MODELS:
        if not wanted or fn.__name__ in wanted:
            fn()
