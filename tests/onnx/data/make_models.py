#!/usr/bin/python3
"""Writes the small models of tests/onnx/data (run with /usr/bin/python3 from this folder).

endless_loop.onnx: a Loop of 10^15 trips adding 1 to x every trip; `orchard run --timeout-ms` must stop it.
"""
import onnx
from onnx import TensorProto as TP, helper as h

body = h.make_graph(
    [h.make_node("Identity", ["c"], ["c_out"]), h.make_node("Add", ["v", "one"], ["v_out"])],
    "body",
    [h.make_tensor_value_info("i", TP.INT64, []), h.make_tensor_value_info("c", TP.BOOL, []),
     h.make_tensor_value_info("v", TP.FLOAT, [1])],
    [h.make_tensor_value_info("c_out", TP.BOOL, []), h.make_tensor_value_info("v_out", TP.FLOAT, [1])],
    [h.make_tensor("one", TP.FLOAT, [1], [1.0])])
graph = h.make_graph(
    [h.make_node("Loop", ["trips", "", "x"], ["y"], body=body)],
    "endless_loop",
    [h.make_tensor_value_info("x", TP.FLOAT, [1])],
    [h.make_tensor_value_info("y", TP.FLOAT, [1])],
    [h.make_tensor("trips", TP.INT64, [], [10**15])])
model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], producer_name="tests/onnx/data/make_models.py")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "endless_loop.onnx")
