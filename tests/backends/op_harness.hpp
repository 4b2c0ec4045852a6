// The op test harness: runs one node on a backend without any model file, for kernel unit tests.
//   auto y = run_op(OpCase{"Softmax", 13}.input("x", x).attr("axis", int64_t{1}));
// Each case runs on every backend that takes the op; the CPU's reference kernels are the oracle.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "orchard/tensor.hpp"

namespace orchard::runtime {
class Backend;
}  // namespace orchard::runtime

namespace orchard::testing {

struct OpCase {
  std::string op;
  int opset = 17;
  std::string domain;
  std::vector<std::pair<std::string, Value>> inputs;  // an empty name marks an omitted optional input
  std::map<std::string, graph::Attribute, std::less<>> attributes;
  int num_outputs = 1;
  std::vector<std::string> constants;  // names of the inputs given by constant()
  int threads = 0;                     // the pool's size (0: ThreadPool::default_threads())
  bool declare_shapes = false;         // the graph declares each fed input's shape (else only its dtype)
  bool accelerated = false;            // each accelerator present that has the op must run the node itself

  OpCase(std::string op_type, int version, std::string dom = "") : op(std::move(op_type)), opset(version), domain(std::move(dom)) {}
  OpCase& input(std::string name, Value v) {
    inputs.emplace_back(std::move(name), std::move(v));
    return *this;
  }
  // An input that is an initializer of the graph (a constant at load, as weights are), not a fed input.
  OpCase& constant(std::string name, Tensor t) {
    constants.push_back(name);
    inputs.emplace_back(std::move(name), Value(std::move(t)));
    return *this;
  }
  OpCase& omitted_input() {
    inputs.emplace_back("", Value());
    return *this;
  }
  OpCase& outputs(int n) {
    num_outputs = n;
    return *this;
  }
  // Runs on a pool of `n` threads (kernels that split work by thread count), whatever the machine has; not under
  // qemu-user, where the tests pin ORCHARD_NUM_THREADS=1.
  OpCase& with_threads(int n) {
    threads = n;
    return *this;
  }
  // Declares the fed inputs' shapes in the graph, as a model with static shapes does (kernels that choose by
  // declared shapes at create).
  OpCase& with_declared_shapes() {
    declare_shapes = true;
    return *this;
  }
  // Expects each compiled-in accelerator present that has the op (CUDA with a GPU) to run the node, not to leave
  // it to the CPU, where the comparison with the CPU would hold whatever the accelerator's kernels do.
  OpCase& on_accelerator() {
    accelerated = true;
    return *this;
  }
  OpCase& attr(const std::string& name, int64_t v);
  OpCase& attr(const std::string& name, float v);
  OpCase& attr(const std::string& name, const std::string& v);
  OpCase& attr(const std::string& name, std::vector<int64_t> v);
  OpCase& attr(const std::string& name, std::vector<float> v);
  OpCase& attr(const std::string& name, std::vector<std::string> v);
  OpCase& attr(const std::string& name, Tensor v);
  OpCase& attr(const std::string& name, std::shared_ptr<const graph::Graph> g);
};

// Runs the case on the CPU backend (its best variant per op) and returns its outputs in order. Expects the
// same result, within per-dtype tolerances (float32 1e-4, float16 1e-2, bfloat16 2e-2 of the output's scale), from
// the reference kernels alone (the oracle) and from the compiled-in accelerators present (CUDA), and bit for bit
// from the test device and the test compiler (they run the CPU's kernels).
Result<std::vector<Value>> run_op(const OpCase& c);

// Runs the case on `chain` alone (a fallback chain, the CPU last), comparing it with nothing: for dtypes the CPU's
// kernels lack. `ran_on`, when given, receives the index in the chain of the backend that ran the node.
Result<std::vector<Value>> run_op_on(const OpCase& c, const std::vector<std::shared_ptr<runtime::Backend>>& chain,
                                     int* ran_on = nullptr);

// Returns a float32 tensor of shape s with values uniform in [-1, 1) from `seed`.
Tensor random_float_tensor(Shape s, unsigned seed);

// Expects `got` to equal `want` in dtype and shape, and elementwise within atol + rtol*|want| (float16 and
// bfloat16 compared as float).
void expect_tensor_near(const Tensor& got, const Tensor& want, double rtol = 1e-5, double atol = 1e-6);

}  // namespace orchard::testing
