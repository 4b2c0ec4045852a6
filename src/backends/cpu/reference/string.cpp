// String kernels: StringNormalizer and TfIdfVectorizer.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "backends/cpu/parallel.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// ---- UTF-8 simple case mapping (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic) ----

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i, or returns -1 (and
// advances one byte) for a malformed sequence, which is then copied through unchanged.
int32_t utf8_decode(const std::string& s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xe ? 3 : (b0 >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
    ++i;
    return -1;
  }
  int32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1f) : len == 3 ? (b0 & 0x0f) : (b0 & 0x07);
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((b & 0xc0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  i += static_cast<size_t>(len);
  return cp;
}

void utf8_encode(int32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Latin Extended-A pairs upper/lower as (even, odd) in 0x100..0x137 and 0x14a..0x177, and as (odd, even)
// in 0x139..0x148 and 0x179..0x17e.
bool latin_ext_a_pair_even_upper(int32_t c) { return (c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177); }
bool latin_ext_a_pair_odd_upper(int32_t c) { return (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e); }

int32_t to_lower_cp(int32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if ((c >= 0xc0 && c <= 0xde && c != 0xd7)) return c + 32;
  if (c == 0x178) return 0xff;
  if (latin_ext_a_pair_even_upper(c)) return (c % 2 == 0) ? c + 1 : c;
  if (latin_ext_a_pair_odd_upper(c)) return (c % 2 == 1) ? c + 1 : c;
  if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;  // Greek
  if (c >= 0x410 && c <= 0x42f) return c + 32;                 // Cyrillic
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  if (c >= 0x460 && c <= 0x481 && c % 2 == 0) return c + 1;
  return c;
}

int32_t to_upper_cp(int32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if (c >= 0xe0 && c <= 0xfe && c != 0xf7) return c - 32;
  if (c == 0xff) return 0x178;
  if (latin_ext_a_pair_even_upper(c)) return (c % 2 == 1) ? c - 1 : c;
  if (latin_ext_a_pair_odd_upper(c)) return (c % 2 == 0) ? c - 1 : c;
  if (c == 0x3c2) return 0x3a3;  // final sigma
  if (c >= 0x3b1 && c <= 0x3c9) return c - 32;
  if (c >= 0x430 && c <= 0x44f) return c - 32;
  if (c >= 0x450 && c <= 0x45f) return c - 80;
  if (c >= 0x460 && c <= 0x481 && c % 2 == 1) return c - 1;
  return c;
}

// Returns `s` with every code point mapped by `map`; malformed bytes are kept as they are.
template <class Map>
std::string map_case(const std::string& s, Map map) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const int32_t cp = utf8_decode(s, i);
    if (cp < 0) out.append(s, start, i - start);
    else utf8_encode(map(cp), out);
  }
  return out;
}

std::string lower_utf8(const std::string& s) { return map_case(s, to_lower_cp); }
std::string upper_utf8(const std::string& s) { return map_case(s, to_upper_cp); }

// ---- StringNormalizer ----

class StringNormalizerKernel final : public OpKernel {
 public:
  enum class CaseChange { none, lower, upper };

  static Status validate(const KernelCreateContext& ctx) {
    const std::string action = ctx.node.attr_string("case_change_action", "NONE");
    if (action != "NONE" && action != "LOWER" && action != "UPPER") {
      return invalid_argument("case_change_action '", action, "' is not one of NONE, LOWER, UPPER");
    }
    return Status::OK();
  }

  explicit StringNormalizerKernel(const KernelCreateContext& ctx) {
    const std::string action = ctx.node.attr_string("case_change_action", "NONE");
    change_ = action == "LOWER" ? CaseChange::lower : action == "UPPER" ? CaseChange::upper : CaseChange::none;
    case_sensitive_ = ctx.node.attr_int("is_case_sensitive", 0) != 0;
    for (const auto& w : ctx.node.attr_strings("stopwords")) stopwords_.insert(case_sensitive_ ? w : lower_utf8(w));
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    if (x->dtype() != DType::string) return invalid_argument("input must be a string tensor, got ", x->description());
    const bool two_dim = x->rank() == 2;
    if (!(x->rank() == 1 || (two_dim && x->dim(0) == 1))) {
      return invalid_argument("input shape ", x->shape().to_string(), " is not [C] or [1, C]");
    }
    const std::string* in = x->data<std::string>();
    std::vector<std::string> kept;
    kept.reserve(static_cast<size_t>(x->numel()));
    for (int64_t i = 0; i < x->numel(); ++i) {
      if (!stopwords_.empty() && stopwords_.count(case_sensitive_ ? in[i] : lower_utf8(in[i]))) continue;
      switch (change_) {
        case CaseChange::none: kept.push_back(in[i]); break;
        case CaseChange::lower: kept.push_back(lower_utf8(in[i])); break;
        case CaseChange::upper: kept.push_back(upper_utf8(in[i])); break;
      }
    }
    if (kept.empty()) kept.emplace_back();  // all dropped: one empty string, per the spec
    const auto c = static_cast<int64_t>(kept.size());
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::string, two_dim ? Shape{1, c} : Shape{c}));
    std::move(kept.begin(), kept.end(), y.data<std::string>());
    return Status::OK();
  }

 private:
  CaseChange change_ = CaseChange::none;
  bool case_sensitive_ = false;
  std::unordered_set<std::string> stopwords_;
};

// ---- TfIdfVectorizer ----

// The n-gram pool as a trie over token ids: a walk along a (skipping) token sequence visits, at depth n,
// the node of that n-gram, which knows its pool ordinal.
class TfIdfVectorizerKernel final : public OpKernel {
 public:
  enum class Mode { tf, idf, tfidf };

  static Status validate(const KernelCreateContext& ctx) {
    const graph::Node& n = ctx.node;
    const std::string mode = n.attr_string("mode", "");
    if (mode != "TF" && mode != "IDF" && mode != "TFIDF") return invalid_argument("mode '", mode, "' is not one of TF, IDF, TFIDF");
    const int64_t min_n = n.attr_int("min_gram_length", 0), max_n = n.attr_int("max_gram_length", 0);
    if (min_n < 1 || max_n < min_n) {
      return invalid_argument("min_gram_length ", min_n, " and max_gram_length ", max_n, " must satisfy 1 <= min <= max");
    }
    if (n.attr_int("max_skip_count", 0) < 0) return invalid_argument("max_skip_count ", n.attr_int("max_skip_count", 0), " is negative");
    const bool has_ints = n.attr("pool_int64s") != nullptr, has_strings = n.attr("pool_strings") != nullptr;
    if (has_ints == has_strings) return invalid_argument("exactly one of pool_int64s and pool_strings must be given");
    const size_t pool_size = has_ints ? n.attr_ints("pool_int64s").size() : n.attr_strings("pool_strings").size();
    const auto counts = n.attr_ints("ngram_counts");
    const auto indexes = n.attr_ints("ngram_indexes");
    int64_t total = 0;
    for (size_t k = 0; k < counts.size(); ++k) {
      const int64_t begin = counts[k];
      const int64_t end = k + 1 < counts.size() ? counts[k + 1] : static_cast<int64_t>(pool_size);
      if (begin < 0 || end < begin || end > static_cast<int64_t>(pool_size)) {
        return invalid_argument("ngram_counts[", k, "] = ", begin, " does not start a valid range of the pool of ", pool_size, " items");
      }
      const auto len = static_cast<int64_t>(k + 1);
      if ((end - begin) % len != 0) {
        return invalid_argument("pool items ", begin, "..", end, " do not form whole ", len, "-grams");
      }
      total += (end - begin) / len;
    }
    if (total != static_cast<int64_t>(indexes.size())) {
      return invalid_argument("ngram_indexes has ", indexes.size(), " entries, the pool holds ", total, " n-grams");
    }
    for (int64_t v : indexes) {
      if (v < 0) return invalid_argument("ngram_indexes holds negative index ", v);
    }
    const auto weights = n.attr_floats("weights");
    if (!weights.empty() && weights.size() != indexes.size()) {
      return invalid_argument("weights has ", weights.size(), " entries, ngram_indexes has ", indexes.size());
    }
    return Status::OK();
  }

  explicit TfIdfVectorizerKernel(const KernelCreateContext& ctx) {
    const graph::Node& n = ctx.node;
    const std::string mode = n.attr_string("mode", "TF");
    mode_ = mode == "IDF" ? Mode::idf : mode == "TFIDF" ? Mode::tfidf : Mode::tf;
    min_n_ = n.attr_int("min_gram_length", 1);
    max_n_ = n.attr_int("max_gram_length", 1);
    max_skip_ = n.attr_int("max_skip_count", 0);
    indexes_ = n.attr_ints("ngram_indexes");
    weights_ = n.attr_floats("weights");
    for (int64_t v : indexes_) out_size_ = std::max(out_size_, v + 1);
    strings_ = n.attr("pool_int64s") == nullptr;
    std::vector<int32_t> pool;  // pool items as token ids
    if (strings_) {
      for (const auto& s : n.attr_strings("pool_strings")) pool.push_back(string_ids_.emplace(s, static_cast<int32_t>(string_ids_.size())).first->second);
    } else {
      for (int64_t v : n.attr_ints("pool_int64s")) pool.push_back(int_ids_.emplace(v, static_cast<int32_t>(int_ids_.size())).first->second);
    }
    const auto counts = n.attr_ints("ngram_counts");
    children_.emplace_back();
    ngram_.push_back(-1);
    int64_t ordinal = 0;
    for (size_t k = 0; k < counts.size(); ++k) {
      const auto begin = static_cast<size_t>(counts[k]);
      const size_t end = k + 1 < counts.size() ? static_cast<size_t>(counts[k + 1]) : pool.size();
      for (size_t p = begin; p + k < end; p += k + 1, ++ordinal) {
        int32_t node = 0;
        for (size_t j = 0; j <= k; ++j) node = child_or_add(node, pool[p + j]);
        if (ngram_[static_cast<size_t>(node)] < 0) ngram_[static_cast<size_t>(node)] = ordinal;  // duplicates: first wins
      }
    }
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    if (strings_ ? x->dtype() != DType::string : (x->dtype() != DType::int32 && x->dtype() != DType::int64)) {
      return invalid_argument("input ", x->description(), " does not match the pool: expected ",
                              strings_ ? "string" : "int32 or int64", " elements");
    }
    if (x->rank() != 1 && x->rank() != 2) return invalid_argument("input shape ", x->shape().to_string(), " is not [C] or [N, C]");
    const int64_t rows = x->rank() == 2 ? x->dim(0) : 1;
    const int64_t cols = x->rank() == 2 ? x->dim(1) : x->dim(0);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, x->rank() == 2 ? Shape{rows, out_size_} : Shape{out_size_}));
    // Token ids of the input; -1 for tokens absent from the pool.
    std::vector<int32_t> ids(static_cast<size_t>(x->numel()));
    for (int64_t i = 0; i < x->numel(); ++i) ids[static_cast<size_t>(i)] = token_id(*x, i);
    float* out = y.data<float>();
    ctx.pool().parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
      std::vector<int64_t> counts(indexes_.size());
      for (int64_t r = r0; r < r1; ++r) {
        std::fill(counts.begin(), counts.end(), 0);
        count_row(ids.data() + r * cols, cols, counts);
        float* dst = out + r * out_size_;
        std::fill(dst, dst + out_size_, 0.0f);
        for (size_t k = 0; k < counts.size(); ++k) {
          if (counts[k] == 0) continue;
          const float w = weights_.empty() ? 1.0f : weights_[k];
          float v = static_cast<float>(counts[k]);
          if (mode_ == Mode::idf) v = w;
          else if (mode_ == Mode::tfidf) v *= w;
          dst[indexes_[k]] += v;
        }
      }
    });
    return Status::OK();
  }

 private:
  int32_t child_or_add(int32_t node, int32_t token) {
    auto [it, inserted] = children_[static_cast<size_t>(node)].emplace(token, static_cast<int32_t>(children_.size()));
    if (inserted) {
      children_.emplace_back();
      ngram_.push_back(-1);
    }
    return it->second;
  }

  int32_t child(int32_t node, int32_t token) const {
    const auto& c = children_[static_cast<size_t>(node)];
    auto it = c.find(token);
    return it == c.end() ? -1 : it->second;
  }

  int32_t token_id(const Tensor& x, int64_t i) const {
    if (strings_) {
      auto it = string_ids_.find(x.data<std::string>()[i]);
      return it == string_ids_.end() ? -1 : it->second;
    }
    const int64_t v = x.dtype() == DType::int32 ? x.data<int32_t>()[i] : x.data<int64_t>()[i];
    auto it = int_ids_.find(v);
    return it == int_ids_.end() ? -1 : it->second;
  }

  // Counts every pool n-gram (min_n..max_n items, equal gaps of 0..max_skip tokens) of one row.
  // Unigrams do not depend on the gap, so they are counted for gap 0 only.
  void count_row(const int32_t* row, int64_t len, std::vector<int64_t>& counts) const {
    for (int64_t skip = 0; skip <= max_skip_; ++skip) {
      const int64_t step = skip + 1;
      for (int64_t start = 0; start < len; ++start) {
        int32_t node = 0;
        int64_t depth = 0;
        for (int64_t pos = start; pos < len && depth < max_n_; pos += step) {
          if (row[pos] < 0 || (node = child(node, row[pos])) < 0) break;
          ++depth;
          if (depth < min_n_ || (depth == 1 && skip > 0)) continue;
          const int64_t ordinal = ngram_[static_cast<size_t>(node)];
          if (ordinal >= 0) ++counts[static_cast<size_t>(ordinal)];
        }
      }
      if (max_n_ < 2) break;  // only unigrams: gaps do not matter
      if (step >= len) break;  // larger gaps cannot form a 2-gram
    }
  }

  Mode mode_ = Mode::tf;
  int64_t min_n_ = 1, max_n_ = 1, max_skip_ = 0, out_size_ = 0;
  bool strings_ = false;
  std::vector<int64_t> indexes_;
  std::vector<float> weights_;
  std::unordered_map<int64_t, int32_t> int_ids_;
  std::unordered_map<std::string, int32_t> string_ids_;
  std::vector<std::unordered_map<int32_t, int32_t>> children_;  // trie edges by token id
  std::vector<int64_t> ngram_;                                   // pool ordinal of the n-gram ending at each node, or -1
};

constexpr KernelDef kKernels[] = {
    {"", "StringNormalizer", 10, kVerifiedOpset, make<StringNormalizerKernel>},
    {"", "TfIdfVectorizer", 9, kVerifiedOpset, make<TfIdfVectorizerKernel>},
};

}  // namespace

std::span<const KernelDef> string_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
