#!/usr/bin/python3
"""Trains the small digits CNN that `make demo` runs, and exports it to ONNX.

How to run (from the repository root; needs Debian's python3-numpy, python3-sklearn, python3-onnx):

    /usr/bin/python3 examples/digits/train.py

What it does:
  1. Loads scikit-learn's bundled digits data set (1797 grey 8x8 images, pixel values 0..16, labels 0..9)
     and splits it with a fixed seed: 1437 images to train on, 360 held out (stratified by label).
  2. Trains a small convolutional network written in plain numpy (forward and backward by hand):
         image/16 -> Conv 3x3 1->8 (pad 1) -> Relu -> Conv 3x3 8->16 (pad 1) -> Relu -> MaxPool 2x2
                  -> Flatten (256) -> Gemm 256->32 -> Relu -> Gemm 32->10 -> Softmax
     with Adam, mini-batches of 32, a cosine learning-rate schedule and random one-pixel shifts of the
     training images. Everything is seeded, and numpy runs single-threaded, so a rerun writes the same files.
  3. Exports the network with onnx.helper to digits_cnn.onnx (IR 7, opset 13, default domain only):
     input 'image' float32[N,1,8,8] takes raw pixel values 0..16 (the model divides by 16 itself);
     output 'probabilities' float32[N,10] holds the class probabilities.
  4. Checks the model with onnx.checker, runs it with a small independent numpy interpreter of its
     nodes, and checks the result matches the trained network.
  5. Writes the held-out set: heldout_images.npy (float32 [360,1,8,8], raw 0..16) and
     heldout_labels.npy (int64 [360]).
The files are written next to this script.
"""

import os

# Single-threaded BLAS: reproducible sums, and kind to a shared machine. Must precede the numpy import.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import hashlib  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 2024
HELDOUT = 360
EPOCHS = 40
BATCH = 32
LR = 3e-3
WEIGHT_DECAY = 1e-4
PIXEL_MAX = 16.0

C1, C2, HIDDEN, CLASSES = 8, 16, 32, 10


# ---------------------------------------------------------------------------------------------------
# The network, in numpy. Activations are NCHW float32, as in ONNX.


def im2col3x3(x):
    """x [B,C,H,W] -> columns [B, C*9, H*W] of the zero-padded 3x3 neighbourhoods (row c*9+ky*3+kx)."""
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((b, c, 3, 3, h, w), dtype=x.dtype)
    for ky in range(3):
        for kx in range(3):
            cols[:, :, ky, kx] = xp[:, :, ky:ky + h, kx:kx + w]
    return cols.reshape(b, c * 9, h * w)


def col2im3x3(dcols, shape):
    """The adjoint of im2col3x3: scatters column gradients back onto the [B,C,H,W] input."""
    b, c, h, w = shape
    d = dcols.reshape(b, c, 3, 3, h, w)
    dxp = np.zeros((b, c, h + 2, w + 2), dtype=dcols.dtype)
    for ky in range(3):
        for kx in range(3):
            dxp[:, :, ky:ky + h, kx:kx + w] += d[:, :, ky, kx]
    return dxp[:, :, 1:-1, 1:-1]


def conv_forward(x, w, bias):
    b, _, h, wd = x.shape
    cols = im2col3x3(x)
    out = np.einsum("ok,bkp->bop", w.reshape(w.shape[0], -1), cols, optimize=True)
    out += bias[None, :, None]
    return out.reshape(b, w.shape[0], h, wd), cols


def conv_backward(dout, cols, w, x_shape):
    b, o, h, wd = dout.shape
    d = dout.reshape(b, o, h * wd)
    dw = np.einsum("bop,bkp->ok", d, cols, optimize=True).reshape(w.shape)
    db = d.sum(axis=(0, 2))
    dcols = np.einsum("ok,bop->bkp", w.reshape(o, -1), d, optimize=True)
    return col2im3x3(dcols, x_shape), dw, db


def maxpool_forward(x):
    b, c, h, w = x.shape
    win = x.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def maxpool_backward(dout, arg, x_shape):
    b, c, h, w = x_shape
    dwin = np.zeros((b, c, h // 2, w // 2, 4), dtype=dout.dtype)
    np.put_along_axis(dwin, arg[..., None], dout[..., None], axis=-1)
    return dwin.reshape(b, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(x_shape)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def init_params(rng):
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "conv1.weight": he((C1, 1, 3, 3), 9),
        "conv1.bias": np.zeros(C1, np.float32),
        "conv2.weight": he((C2, C1, 3, 3), C1 * 9),
        "conv2.bias": np.zeros(C2, np.float32),
        "fc1.weight": he((HIDDEN, C2 * 16), C2 * 16),  # [out, in], as ONNX Gemm with transB=1 wants
        "fc1.bias": np.zeros(HIDDEN, np.float32),
        "fc2.weight": he((CLASSES, HIDDEN), HIDDEN),
        "fc2.bias": np.zeros(CLASSES, np.float32),
    }


def forward(p, images, keep=False):
    """images: raw pixels [B,1,8,8]. Returns probabilities [B,10] (and the cache for backward)."""
    x0 = images / np.float32(PIXEL_MAX)
    z1, cols1 = conv_forward(x0, p["conv1.weight"], p["conv1.bias"])
    a1 = np.maximum(z1, 0)
    z2, cols2 = conv_forward(a1, p["conv2.weight"], p["conv2.bias"])
    a2 = np.maximum(z2, 0)
    m, arg = maxpool_forward(a2)
    f = m.reshape(m.shape[0], -1)
    z3 = f @ p["fc1.weight"].T + p["fc1.bias"]
    a3 = np.maximum(z3, 0)
    z4 = a3 @ p["fc2.weight"].T + p["fc2.bias"]
    probs = softmax(z4)
    if not keep:
        return probs
    return probs, (x0, cols1, z1, a1, cols2, z2, a2, arg, m, f, z3, a3)


def backward(p, probs, labels, cache):
    """Gradients of the mean cross-entropy loss with respect to every parameter."""
    x0, cols1, z1, a1, cols2, z2, a2, arg, m, f, z3, a3 = cache
    g = {}
    dz4 = probs.copy()
    dz4[np.arange(len(labels)), labels] -= 1
    dz4 /= len(labels)
    g["fc2.weight"] = dz4.T @ a3
    g["fc2.bias"] = dz4.sum(axis=0)
    dz3 = (dz4 @ p["fc2.weight"]) * (z3 > 0)
    g["fc1.weight"] = dz3.T @ f
    g["fc1.bias"] = dz3.sum(axis=0)
    dm = (dz3 @ p["fc1.weight"]).reshape(m.shape)
    dz2 = maxpool_backward(dm, arg, a2.shape) * (z2 > 0)
    da1, g["conv2.weight"], g["conv2.bias"] = conv_backward(dz2, cols2, p["conv2.weight"], a1.shape)
    dz1 = da1 * (z1 > 0)
    _, g["conv1.weight"], g["conv1.bias"] = conv_backward(dz1, cols1, p["conv1.weight"], x0.shape)
    return g


def random_shift(images, rng):
    """Shifts each image by -1, 0 or +1 pixel in each direction, filling with zeros (data augmentation)."""
    out = np.zeros_like(images)
    shifts = rng.integers(-1, 2, size=(len(images), 2))
    for i, (dy, dx) in enumerate(shifts):
        src = images[i, 0, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
        out[i, 0, max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def train(train_x, train_y, rng):
    p = init_params(rng)
    m1 = {k: np.zeros_like(v) for k, v in p.items()}
    m2 = {k: np.zeros_like(v) for k, v in p.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = (len(train_x) + BATCH - 1) // BATCH
    total, step = EPOCHS * steps_per_epoch, 0
    for epoch in range(EPOCHS):
        order = rng.permutation(len(train_x))
        loss_sum, correct = 0.0, 0
        for s in range(steps_per_epoch):
            idx = order[s * BATCH:(s + 1) * BATCH]
            xb, yb = random_shift(train_x[idx], rng), train_y[idx]
            probs, cache = forward(p, xb, keep=True)
            loss_sum += float(-np.log(probs[np.arange(len(yb)), yb] + 1e-12).sum())
            correct += int((probs.argmax(axis=1) == yb).sum())
            grads = backward(p, probs, yb, cache)
            step += 1
            lr = LR * 0.5 * (1 + np.cos(np.pi * (step - 1) / total))
            for k in p:
                gk = grads[k].astype(np.float32)
                if k.endswith("weight"):
                    gk = gk + WEIGHT_DECAY * p[k]
                m1[k] = beta1 * m1[k] + (1 - beta1) * gk
                m2[k] = beta2 * m2[k] + (1 - beta2) * gk * gk
                mhat = m1[k] / (1 - beta1**step)
                vhat = m2[k] / (1 - beta2**step)
                p[k] = (p[k] - lr * mhat / (np.sqrt(vhat) + eps)).astype(np.float32)
        if epoch % 5 == 4 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1:2d}: loss {loss_sum / len(train_x):.4f}, "
                  f"train accuracy (shifted) {100.0 * correct / len(train_x):.1f}%")
    return p


# ---------------------------------------------------------------------------------------------------
# Export to ONNX, and an independent numpy interpreter of the exported graph to check it.


def export(p, path):
    inits = [numpy_helper.from_array(v, name=k) for k, v in p.items()]
    inits.append(numpy_helper.from_array(np.array(PIXEL_MAX, dtype=np.float32), name="pixel_max"))
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    nodes = [
        helper.make_node("Div", ["image", "pixel_max"], ["scaled"], name="scale"),
        helper.make_node("Conv", ["scaled", "conv1.weight", "conv1.bias"], ["conv1"], name="conv1", **conv),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("Conv", ["relu1", "conv2.weight", "conv2.bias"], ["conv2"], name="conv2", **conv),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu3"], name="relu3"),
        helper.make_node("Gemm", ["relu3", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", CLASSES])],
        initializer=inits)
    graph.doc_string = ("8x8 handwritten digit classifier. Input: raw pixel values 0..16 (scikit-learn digits); "
                        "output: probabilities of the digits 0..9.")
    model = helper.make_model(graph, producer_name="orchard examples/digits/train.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    model.model_version = 1
    model.doc_string = "Small CNN for scikit-learn's 8x8 digits, trained by examples/digits/train.py."
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model


def interpret(model, image):
    """Runs `model` on `image` by reading its nodes one by one: a check of the export, not of the math above."""
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env["image"] = image
    for n in model.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in n.attribute}
        x = [env[i] for i in n.input]
        if n.op_type == "Div":
            y = x[0] / x[1]
        elif n.op_type == "Relu":
            y = np.where(x[0] > 0, x[0], 0).astype(x[0].dtype)
        elif n.op_type == "Conv":
            (w, bias), (kh, kw), pads = x[1:], a["kernel_shape"], a["pads"]
            xp = np.pad(x[0], ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
            oh, ow = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
            y = np.zeros((x[0].shape[0], w.shape[0], oh, ow), np.float64)
            for ky in range(kh):
                for kx in range(kw):
                    y += np.einsum("bchw,oc->bohw", xp[:, :, ky:ky + oh, kx:kx + ow], w[:, :, ky, kx])
            y = (y + bias[None, :, None, None]).astype(np.float32)
        elif n.op_type == "MaxPool":
            b, c, h, w = x[0].shape
            y = np.full((b, c, h // 2, w // 2), -np.inf, np.float32)
            for dy in range(2):
                for dx in range(2):
                    y = np.maximum(y, x[0][:, :, dy::2, dx::2])
        elif n.op_type == "Flatten":
            y = x[0].reshape(x[0].shape[0], -1)
        elif n.op_type == "Gemm":
            y = (x[0].astype(np.float64) @ x[1].T.astype(np.float64) + x[2]).astype(np.float32)
        elif n.op_type == "Softmax":
            e = np.exp(x[0] - x[0].max(axis=a["axis"], keepdims=True))
            y = e / e.sum(axis=a["axis"], keepdims=True)
        else:
            raise ValueError(f"interpret: unexpected op {n.op_type}")
        env[n.output[0]] = y
    return env[model.graph.output[0].name]


def main():
    np.seterr(over="raise", invalid="raise")
    digits = load_digits()
    images = digits.images.astype(np.float32).reshape(-1, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=HELDOUT, random_state=SEED, stratify=labels)
    print(f"digits: {len(images)} images, {len(train_x)} to train on, {len(test_x)} held out")

    rng = np.random.default_rng(SEED)
    params = train(train_x, train_y, rng)

    probs = forward(params, test_x)
    correct = int((probs.argmax(axis=1) == test_y).sum())
    accuracy = 100.0 * correct / len(test_y)
    print(f"held-out accuracy: {accuracy:.1f}% ({correct}/{len(test_y)})")

    model_path = os.path.join(HERE, "digits_cnn.onnx")
    model = export(params, model_path)
    onnx_probs = interpret(onnx.load(model_path), test_x)
    diff = float(np.abs(onnx_probs - probs).max())
    same = bool((onnx_probs.argmax(axis=1) == probs.argmax(axis=1)).all())
    print(f"exported model matches the trained network: max |diff| {diff:.2e}, same predictions: {same}")
    if diff > 1e-4 or not same:
        sys.exit("error: the exported model does not match the trained network")

    np.save(os.path.join(HERE, "heldout_images.npy"), test_x.astype(np.float32))
    np.save(os.path.join(HERE, "heldout_labels.npy"), test_y.astype(np.int64))

    size = os.path.getsize(model_path)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"wrote digits_cnn.onnx ({size} bytes, {sum(v.size for v in params.values())} parameters, "
          f"ops: {', '.join(ops)}), heldout_images.npy, heldout_labels.npy")
    for name in ("digits_cnn.onnx", "heldout_images.npy", "heldout_labels.npy"):
        with open(os.path.join(HERE, name), "rb") as fh:
            print(f"  sha256 {hashlib.sha256(fh.read()).hexdigest()[:16]}  {name}")
    if accuracy < 95.0:
        sys.exit(f"error: held-out accuracy {accuracy:.1f}% is below 95%")


if __name__ == "__main__":
    main()
